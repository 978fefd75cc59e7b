import pytest

import distilbert_catalog as dc
from tests.support import FEAR, JOY


def test_pipeline_job_is_the_azure_ml_job_from_the_same_yaml():
    from azure.ai.ml.entities import PipelineJob

    job = dc.pipeline_job("emotion-detection", num_train_epochs=1, learning_rate=1e-4)
    assert isinstance(job, PipelineJob)
    assert list(job.jobs) == ["finetune", "evaluate", "evaluate_natural", "model_card"]
    assert job._validate().passed
    assert job._to_dict()["inputs"]["num_train_epochs"] == 1  # what would be submitted


def test_pipeline_job_rejects_unknown_inputs():
    with pytest.raises(TypeError, match="num_epochs"):
        dc.pipeline_job("emotion-detection", num_epochs=1)
    with pytest.raises(FileNotFoundError, match="emotion-detection"):
        dc.pipeline_job("no-such-pipeline")


def test_load_model_predicts_in_batches(emotion_model):
    model = dc.load_model(emotion_model.mlflow_model_dir, batch_size=2)
    texts = [JOY, FEAR, "i feel delighted and cheerful and glad today", "ok"]
    answers = model.predict([{"input_string": t} for t in texts], {"top_k": 1})
    assert [a["label"] for a in answers[:2]] == ["joy", "fear"]
    assert len(answers) == 4
