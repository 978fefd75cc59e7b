import json
import subprocess
import sys

import yaml

from tests.support import FEAR, JOY


def test_mlflow_model_metadata(emotion_model):
    mlmodel = yaml.safe_load((emotion_model.mlflow_model_dir / "MLmodel").read_text())
    assert mlmodel["metadata"]["task"] == "text-classification"
    assert "signature" in mlmodel and "params" in mlmodel["signature"]
    requirements = (emotion_model.mlflow_model_dir / "requirements.txt").read_text()
    assert "torch==" in requirements and "transformers==" in requirements
    # Trainer checkpoints stay out of the MLflow model
    assert not list(emotion_model.mlflow_model_dir.rglob("checkpoint-*"))


def test_pyfunc_predicts_in_a_fresh_process(emotion_model):
    code = f"""
import json, mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({str(emotion_model.mlflow_model_dir)!r})
frame = pd.DataFrame({{"input_string": [{JOY!r}, {FEAR!r}]}})
top1 = model.predict(frame)
top3 = model.predict(frame, params={{"top_k": 3}})
print(json.dumps({{"top1": top1.to_dict("records"), "top3": top3["predictions"].tolist()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["label"] for r in result["top1"]] == ["joy", "fear"]
    assert all(len(ranked) == 3 for ranked in result["top3"])
    scores = [r["score"] for r in result["top3"][0]]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6
