"""The README's first command: the emotion pipeline end to end on bundled data, offline.

It builds (once, cached) the pretrained offline DistilBERT converted from all-MiniLM-L6-v2 (see
:mod:`distilbert_catalog.pretrained`), runs ``pipelines/emotion-detection.yaml`` through the local
runner with the model input pointing at it (fine-tune → evaluate on the test split and on
hand-written natural sentences → model card), serves the MLflow model under the real Azure ML
inference server and scores a sample request.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .api import pipeline_path
from .metrics_file import FILENAME as METRICS_FILE, read_metrics
from .pretrained import pretrained_distilbert
from .runner.endpoints import serve
from .runner.pipeline import run_pipeline
from .serving import SCORE_SCRIPT
from .tracking import child_env

#: a from-scratch tiny model needs a far higher learning rate than a pretrained one
TINY_OVERRIDES = {"learning_rate": 0.002, "num_train_epochs": 8, "per_device_train_batch_size": 16}
#: the pipeline's settings, but for the 384-wide pretrained offline DistilBERT (see README)
PRETRAINED_OVERRIDES = {"learning_rate": 1e-4, "num_train_epochs": 4,
                        "per_device_train_batch_size": 16}
SAMPLE_REQUEST = {"inputs": {"input_string": ["i finally got the keys to my first apartment",
                                              "i am terrified of what comes next"]}}


def quickstart(output_dir: str | Path = "quickstart-out", print_=print) -> dict:
    out = Path(output_dir).resolve()
    started = time.time()
    print_("pretrained offline DistilBERT (all-MiniLM-L6-v2 weights; built once, then cached)")
    model = pretrained_distilbert()
    print_(f"  {model}")
    result = run_pipeline(pipeline_path("emotion-detection"),
                          inputs={"model_name": str(model), **PRETRAINED_OVERRIDES},
                          output_dir=out / "pipeline", progress=print_,
                          env=child_env(out / "mlruns"))
    outputs = result["outputs"]
    metrics = read_metrics(outputs["evaluation_result"])
    natural = read_metrics(result["steps"]["evaluate_natural"]["evaluation_result"])
    print_("scoring a sample request under azmlinfsrv ...")
    with serve(SCORE_SCRIPT, outputs["mlflow_model"]) as server:
        status, response = server.invoke(SAMPLE_REQUEST)
    (out / "sample_request.json").write_text(json.dumps(SAMPLE_REQUEST, indent=2) + "\n")
    (out / "sample_response.json").write_text(json.dumps(response, indent=2) + "\n")
    summary = {
        "mlflow_model": str(outputs["mlflow_model"]),
        "pytorch_model": str(result["steps"]["finetune"]["pytorch_model_folder"]),
        "metrics": str(Path(outputs["evaluation_result"]) / METRICS_FILE),
        "model_card": str(Path(outputs["model_card"]) / "README.md"),
        "sample_request": str(out / "sample_request.json"),
        "sample_response": str(out / "sample_response.json"),
        "mlflow_tracking": str(out / "mlruns"),
        "test_accuracy": round(metrics["metrics"]["accuracy"], 4),
        "natural_accuracy": round(natural["metrics"]["accuracy"], 4),
        "http_status": status,
        "seconds": round(time.time() - started, 1),
    }
    print_("\nquickstart finished:")
    for key, value in summary.items():
        print_(f"  {key:16} {value}")
    print_(f"  response         {json.dumps(response)}")
    return summary
