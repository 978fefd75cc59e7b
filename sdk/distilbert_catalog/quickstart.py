"""The README's first command: the emotion pipeline end to end on bundled data, offline.

It builds a tiny DistilBERT (random init, vocabulary trained on the bundled text), runs
``pipelines/emotion-detection.yaml`` through the local runner (fine-tune → evaluate → model card),
serves the MLflow model under the real Azure ML inference server and scores a sample request.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .api import pipeline_path
from .metrics_file import read_metrics
from .runner.endpoints import serve
from .runner.pipeline import run_pipeline
from .tiny import build_tiny_model
from .tracking import child_env

SCORE_SCRIPT = Path(__file__).resolve().parent / "serving" / "score.py"
#: a from-scratch tiny model needs a far higher learning rate than a pretrained one
TINY_OVERRIDES = {"learning_rate": 0.002, "num_train_epochs": 8, "per_device_train_batch_size": 16}
SAMPLE_REQUEST = {"inputs": {"input_string": ["i feel so cheerful and delighted this morning",
                                              "i feel terrified and panicky tonight"]}}


def quickstart(output_dir: str | Path = "quickstart-out", print_=print) -> dict:
    out = Path(output_dir).resolve()
    started = time.time()
    tiny = out / "tiny-distilbert"
    if not (tiny / "config.json").exists():
        print_(f"building a tiny DistilBERT in {tiny}")
        build_tiny_model(tiny)
    result = run_pipeline(pipeline_path("emotion-detection"),
                          inputs={"model_name": str(tiny), **TINY_OVERRIDES},
                          output_dir=out / "pipeline", progress=print_,
                          env=child_env(out / "mlruns"))
    outputs = result["outputs"]
    metrics = read_metrics(outputs["evaluation_result"])
    print_("scoring a sample request under azmlinfsrv ...")
    with serve(SCORE_SCRIPT, outputs["mlflow_model"]) as server:
        status, response = server.invoke(SAMPLE_REQUEST)
    (out / "sample_request.json").write_text(json.dumps(SAMPLE_REQUEST, indent=2) + "\n")
    (out / "sample_response.json").write_text(json.dumps(response, indent=2) + "\n")
    summary = {
        "mlflow_model": str(outputs["mlflow_model"]),
        "pytorch_model": str(result["steps"]["finetune"]["pytorch_model_folder"]),
        "metrics": str(Path(outputs["evaluation_result"]) / "metrics.json"),
        "model_card": str(Path(outputs["model_card"]) / "README.md"),
        "sample_request": str(out / "sample_request.json"),
        "sample_response": str(out / "sample_response.json"),
        "mlflow_tracking": str(out / "mlruns"),
        "test_accuracy": metrics["metrics"]["accuracy"],
        "http_status": status,
        "seconds": round(time.time() - started, 1),
    }
    print_("\nquickstart finished:")
    for key, value in summary.items():
        print_(f"  {key:16} {value}")
    print_(f"  response         {json.dumps(response)}")
    return summary
