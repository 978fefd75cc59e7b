import json
from pathlib import Path

import pytest

import distilbert_catalog as dc
from distilbert_catalog.errors import DataError
from distilbert_catalog.samples import sample_dir
from tests.support import EMOTION_LABELS


def test_the_emotion_model_reads_natural_sentences_it_never_saw(emotion_model, emotion_eval,
                                                                 tmp_path):
    """Chance is 1/6 = 0.17. The natural set was written apart from the sample (other authors,
    no shared wording), so the model must understand the sentences, not match keywords."""
    natural = dc.evaluate("text-classification", output_dir=tmp_path,
                          mlflow_model_path=str(emotion_model.mlflow_model_dir),
                          test_data=str(sample_dir("emotion_natural")),
                          label_names=EMOTION_LABELS)
    assert natural["n_examples"] >= 40
    assert natural["metrics"]["accuracy"] >= 0.8
    record, _ = emotion_eval  # the sample's own test split, on topics training never covers
    assert record["metrics"]["accuracy"] >= 0.5
    assert emotion_model.metrics["eval_accuracy"] >= 0.75
    assert emotion_model.metrics["train_loss"] < 1.5  # ln(6) = 1.79 at chance


def test_outputs_are_a_model_folder_an_mlflow_model_and_metrics(emotion_model):
    assert (emotion_model.model_dir / "config.json").exists()
    config = json.loads((emotion_model.model_dir / "config.json").read_text())
    assert config["id2label"]["0"] == "sadness"
    assert (emotion_model.mlflow_model_dir / "MLmodel").exists()
    record = json.loads((emotion_model.metrics_dir / "metrics.json").read_text())
    assert record["stage"] == "finetune" and record["config"]["train_examples"] == 480
    assert record["config"]["labels"] == EMOTION_LABELS.split(",")


def test_training_is_logged_to_mlflow(emotion_model):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=emotion_model.tracking_store.as_uri())
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string="tags.stage = 'finetune'")
    assert len(runs) >= 1
    assert max(run.data.metrics.get("final.eval_accuracy", 0.0) for run in runs) >= 0.8


def test_bad_data_fails_before_any_model_is_loaded(tmp_path):
    """The model name does not exist: reaching the model would raise a different error."""
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "i feel fine", "label": 0}\n{"text": "", "label": 1}\n')
    with pytest.raises(DataError, match=r"row 2, column 'text'"):
        dc.finetune("text-classification", output_dir=tmp_path / "out",
                    model_name="no-such-org/no-such-model", train_data=str(train))
    assert not (tmp_path / "out").exists()


def test_resume_from_checkpoint(tiny_model, emotion_dir, tmp_path):
    common = dict(model_name=str(tiny_model), train_data=str(emotion_dir),
                  label_names=EMOTION_LABELS, learning_rate=3e-3,
                  per_device_train_batch_size=32)
    first = dc.finetune("text-classification", output_dir=tmp_path / "a", num_train_epochs=1,
                        **common)
    checkpoints = list((first.model_dir / "checkpoints").glob("checkpoint-*"))
    assert checkpoints
    resumed = dc.finetune("text-classification", output_dir=tmp_path / "b", num_train_epochs=2,
                          resume_from_checkpoint=str(first.model_dir / "checkpoints"), **common)
    first_steps = json.loads((checkpoints[0] / "trainer_state.json").read_text())["global_step"]
    metrics = json.loads((resumed.metrics_dir / "metrics.json").read_text())["metrics"]
    # on to epoch 2 with only the second epoch's steps run in this job (not 2 epochs from scratch)
    assert metrics["epoch"] == 2.0
    assert round(metrics["train_steps_per_second"] * metrics["train_runtime"]) == first_steps


def test_a_resumed_run_adopts_the_foreign_best_checkpoint_and_keeps_its_metric(tmp_path):
    """Resuming from another job's folder: its best checkpoint's weights are copied into this run's
    folder and stay the one to beat (a later tie must not win, as in an uninterrupted run)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from distilbert_catalog.training import AdoptForeignBestCheckpoint

    foreign = tmp_path / "killed" / "checkpoints" / "checkpoint-15"
    foreign.mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "optimizer.pt", "rng_state.pth"):
        (foreign / name).write_text(name)
    args = TrainingArguments(output_dir=str(tmp_path / "resumed" / "checkpoints"), report_to=[])

    def begin(best, metric, world_zero=True):
        state = TrainerState(best_model_checkpoint=best, best_metric=metric,
                             is_world_process_zero=world_zero)
        AdoptForeignBestCheckpoint().on_train_begin(args, state, TrainerControl())
        return state

    adopted = tmp_path / "resumed" / "checkpoints" / "checkpoint-15"
    other_rank = begin(str(foreign), 0.2, world_zero=False)  # only rank 0 copies
    assert other_rank.best_model_checkpoint == str(adopted) and not adopted.exists()
    state = begin(str(foreign), 0.2)
    assert (state.best_model_checkpoint, state.best_metric) == (str(adopted), 0.2)
    assert sorted(p.name for p in adopted.iterdir()) == ["config.json", "model.safetensors"]
    assert (adopted / "model.safetensors").read_text() == "model.safetensors"
    own = begin(str(adopted), 0.3)  # already this run's: untouched
    assert (own.best_model_checkpoint, own.best_metric) == (str(adopted), 0.3)
    gone = begin(None, 0.2)  # the Trainer dropped a best path that no longer exists
    assert (gone.best_model_checkpoint, gone.best_metric) == (None, None)


def test_unknown_sdk_arguments_fail_loudly():
    with pytest.raises(TypeError, match="learning_rat"):
        dc.finetune("text-classification", learning_rat=1e-3)
