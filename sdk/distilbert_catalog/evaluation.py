"""Task-agnostic evaluation: validate data, load the model once, let the task score, write files.

Outputs (one folder): ``metrics.json`` (the shared schema, see :mod:`metrics_file`),
``predictions.jsonl`` (one row per example), task plots, and ``sample.json`` — a real request to
the model and its real answer, for the model card.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import mlflow

from .arguments import EvaluateDataArgs, EvaluationArgs, ModelArgs, TaskArguments
from .data import load_split
from .inference import load_predictor
from .metrics_file import read_metrics, write_metrics
from .modeling import describe_model
from .serving.request_parsing import parse_request
from .tasks import get_task
from .tasks.base import EvalResult
from .tracking import configure_tracking, log_flat


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, default=float) + "\n")


def write_sample(out_dir: Path, predictor) -> str:
    """Score the task's example request exactly as the endpoint would, and keep both sides."""
    request = {"inputs": predictor.task.example_request()}
    rows, params = parse_request(request, predictor.task)
    sample = {"request": request, "response": predictor.predict(rows, params)}
    (out_dir / "sample.json").write_text(json.dumps(sample, indent=2) + "\n")
    return "sample.json"


def evaluation_data(task, data: EvaluateDataArgs, task_args: TaskArguments
                    ) -> tuple[dict, object]:
    """The task settings (its arguments and label names) and the validated evaluation split,
    before any model is loaded; the evaluation and the quality gate both start here."""
    test = load_split(data.test_data, data, data.test_split)
    return task_args.settings(), task.prepare_data(test, task_args.keys, task_args.labels)


def timed_evaluations(task, predictors: Mapping[str, object], data, settings: Mapping[str, Any],
                      rounds: int) -> tuple[dict[str, list[float]], dict[str, EvalResult]]:
    """Evaluate ``data`` with every predictor once per round, in turn (interleaved, so load that
    changes between rounds touches all alike); return each one's seconds per round and its
    first round's result (later rounds only time the same answers again)."""
    seconds: dict[str, list[float]] = {name: [] for name in predictors}
    first: dict[str, EvalResult] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for name, predictor in predictors.items():
                out = Path(tmp, f"{name}-{round_}")
                out.mkdir()
                started = time.perf_counter()
                result = task.evaluate(predictor, data, out, settings)
                seconds[name].append(time.perf_counter() - started)
                first.setdefault(name, result)
    return seconds, first


def evaluate(task_name: str, model: ModelArgs, data: EvaluateDataArgs, task_args: TaskArguments,
             options: EvaluationArgs, out_dir: str | Path) -> dict:
    """Evaluate ``model`` on ``data``; return the metrics.json record written to ``out_dir``."""
    task = get_task(task_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings, test = evaluation_data(task, data, task_args)
    # A task may score a predictions file made by any model instead of running one.
    predictions = task.predictions_source(settings)
    predictor = None if predictions else load_predictor(
        model.model, task_name=task.name, backend=options.backend,
        batch_size=options.batch_size)
    result: EvalResult = task.evaluate(predictor, test, out_dir, settings)
    write_jsonl(out_dir / "predictions.jsonl", result.rows)
    artifacts = {"predictions": "predictions.jsonl", **result.artifacts}
    config = {**settings, **dataclasses.asdict(options)}
    if predictor is not None:
        artifacts["sample"] = write_sample(out_dir, predictor)
        config["backend_resolved"] = predictor.backend
        if predictor.gate:
            config["backend_gate"] = predictor.gate
        config["model_info"] = describe_model(predictor.model, model.model)
    evaluated = predictions or model.model
    path = write_metrics(out_dir, task=task.name, stage="evaluation", model=evaluated,
                         dataset=data.dataset_name or data.test_data, split=data.test_split,
                         n_examples=len(test), metrics=result.metrics, details=result.details,
                         artifacts=artifacts, config=config)
    configure_tracking()
    with mlflow.start_run(nested=mlflow.active_run() is not None):
        mlflow.set_tags({"task": task.name, "stage": "evaluation"})
        log_flat(result.metrics)
        mlflow.log_artifacts(str(out_dir))
    return read_metrics(path)
