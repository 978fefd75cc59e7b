"""The quality gate: measure faster backends against fp32 on the task's evaluation data.

Each candidate backend (:mod:`distilbert_catalog.backends`) scores the same evaluation data as the
fp32 reference, through the task's own evaluation, in interleaved rounds (reference, candidate,
reference, ...) so machine noise hits every backend alike. A candidate passes when it loses at most
``tolerance`` points of the task's quality metric (:attr:`Task.quality_metric`: QA F1, NER entity
F1, classification accuracy, fill-mask top-1) *and* runs faster than fp32 (median over the rounds):
a backend slower than the reference is no candidate, however exact. The record - every candidate's quality, difference,
median time with its spread, speed-up and verdict - is written next to the model weights
(``backend_gate.json``, with the exported ONNX graphs under ``onnx/``), into the MLflow model's
metadata and into a ``metrics.json`` for the model card; ``backend="auto"`` then serves the
fastest candidate that passed, wherever the model is loaded on the same kind of CPU. The record
names the CPU it was measured on (model, ISA features, torch and ONNX Runtime versions, threads:
:func:`distilbert_catalog.hardware.cpu_description`); on another kind of CPU ``auto`` ignores it
and serves fp32 until the gate is run there.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from .backends import (AUTO, BACKENDS, EXACT, GATE_FILE, ONNX_DIR, ONNX_FILES, REFERENCE,
                       copy_onnx_files, export_onnx, resolve_backend, unavailable)
from .defaults import INFERENCE_BATCH_SIZE
from .errors import CatalogError
from .evaluation import evaluation_data, timed_evaluations
from .hardware import cpu_description, describe
from .inference import Predictor
from .metrics_file import read_metrics, write_metrics
from .mlflow_model import save_mlflow_model
from .modeling import resolve_model_source
from .tasks import get_task


def parse_candidates(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise CatalogError(f"candidates must be a comma-separated list of {', '.join(BACKENDS)}; "
                           f"got {text!r}")
    return [n for n in dict.fromkeys(names) if n != REFERENCE]


def run_gate(model_dir: str | Path, task, data, settings: Mapping[str, Any], *,
             candidates: list[str], tolerance: float = 0.5, rounds: int = 3,
             batch_size: int = INFERENCE_BATCH_SIZE, onnx_dir: str | Path) -> dict:
    """Score ``data`` with fp32 and every available candidate; return the gate record.

    ``model_dir`` is a Hugging Face model folder; graphs for ONNX candidates are exported into
    ``onnx_dir``.
    """
    from transformers import AutoTokenizer

    if rounds < 1 or tolerance < 0:
        raise CatalogError(f"rounds must be >= 1 and tolerance >= 0; got {rounds}, {tolerance}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def load():
        return task.model_class().from_pretrained(model_dir)

    skipped = {name: reason for name in candidates if (reason := unavailable(name))}
    names = [REFERENCE, *(n for n in candidates if n not in skipped)]
    if any(n in ONNX_FILES for n in names):
        export_onnx(load(), onnx_dir, int8="onnx-int8" in names)
    predictors = {name: Predictor(load(), tokenizer, task, backend=name, batch_size=batch_size,
                                  onnx_dir=onnx_dir) for name in names}
    seconds, first = timed_evaluations(task, predictors, data, settings, rounds)
    quality = {name: float(r.metrics[task.quality_metric]) for name, r in first.items()}
    answers = {name: [[row[f] for f in task.answer_fields] for row in r.rows]
               for name, r in first.items()}
    reference_time = statistics.median(seconds[REFERENCE])
    rows = []
    for name in names:
        delta = (quality[name] - quality[REFERENCE]) * task.quality_points
        median = statistics.median(seconds[name])
        changed = sum(a != b for a, b in zip(answers[name], answers[REFERENCE]))
        speedup = reference_time / median
        verdict = verdict_of(name, delta, speedup, tolerance)
        rows.append({"backend": name, "exact": name in EXACT, "quality": quality[name],
                     "quality_delta_points": round(delta, 4), "answers_changed": changed,
                     "seconds_median": round(median, 4),
                     "seconds_range": [round(min(seconds[name]), 4),
                                       round(max(seconds[name]), 4)],
                     "speedup": round(speedup, 3), "passed": verdict == "passed",
                     "verdict": verdict})
    record = {"metric": task.quality_metric, "tolerance_points": tolerance,
              "reference": REFERENCE, "rounds": rounds, "examples": len(data),
              "batch_size": batch_size, "cpu": cpu_description(),
              "torch_threads": torch.get_num_threads(), "candidates": rows,
              "unavailable": skipped}
    record["chosen"] = resolve_backend(AUTO, gate=record)
    return record


def verdict_of(name: str, delta_points: float, speedup: float, tolerance: float) -> str:
    """Why a backend is kept or not: the reference always is; a candidate must lose at most
    ``tolerance`` points and run faster than the reference."""
    if name == REFERENCE:
        return "passed"
    if delta_points < -tolerance:
        return f"lost {-delta_points:.2f} points (more than {tolerance:g})"
    if speedup <= 1.0:
        return f"not faster than {REFERENCE} ({speedup:.2f}x)"
    return "passed"


def gate_model(task_name: str, model, data_args, task_args, gate_args, mlflow_out: str | Path,
               result_dir: str | Path) -> dict:
    """Run the gate on a catalog model and write the gated MLflow model and its metrics.json.

    The new MLflow model is the input model plus ``backend_gate.json`` and the ONNX graphs of the
    candidates that passed, with ``backend: auto`` and the record in its metadata.
    """
    task = get_task(task_name)
    candidates = parse_candidates(gate_args.candidates)
    settings, data = evaluation_data(task, data_args, task_args)
    if task.predictions_source(settings):
        raise CatalogError("the gate runs the model on the data; a predictions file "
                           f"({task.predictions_source(settings)}) cannot be gated")
    model_dir, _ = resolve_model_source(model.model)
    if not Path(model_dir).is_dir():
        raise CatalogError(f"the gate needs a local model folder or MLflow model; got {model.model}")
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp, "model")
        shutil.copytree(model_dir, staged, ignore=shutil.ignore_patterns(
            "checkpoints", ONNX_DIR, GATE_FILE))
        exported = Path(tmp, "exported")
        record = run_gate(staged, task, data, settings, candidates=candidates,
                          tolerance=gate_args.tolerance, rounds=gate_args.rounds,
                          batch_size=gate_args.batch_size, onnx_dir=exported)
        kept = [c["backend"] for c in record["candidates"] if c["passed"]]
        if any(b in ONNX_FILES for b in kept):
            copy_onnx_files(exported, staged / ONNX_DIR, kept)
        (staged / GATE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        save_mlflow_model(staged, mlflow_out, task_name=task.name, backend=AUTO,
                          batch_size=gate_args.batch_size,
                          extra_metadata={"backend_gate": summary(record)})
    chosen = next(c for c in record["candidates"] if c["backend"] == record["chosen"])
    path = write_metrics(
        result_dir, task=task.name, stage="gate", model=model.model,
        dataset=data_args.dataset_name or data_args.test_data, split=data_args.test_split,
        n_examples=len(data),
        metrics={"speedup": chosen["speedup"],
                 "quality_delta_points": chosen["quality_delta_points"],
                 f"{task.quality_metric}_fp32": record["candidates"][0]["quality"],
                 f"{task.quality_metric}_chosen": chosen["quality"]},
        details={"gate": record}, config={**settings, **dataclasses.asdict(gate_args),
                                          "backend_chosen": record["chosen"]})
    return read_metrics(path)


def summary(record: Mapping[str, Any]) -> dict:
    """What the MLflow model's metadata says about its gate: choice, metric and each verdict."""
    return {"chosen": record["chosen"], "metric": record["metric"],
            "tolerance_points": record["tolerance_points"], "cpu": describe(record["cpu"]),
            "candidates": {c["backend"]: {"quality_delta_points": c["quality_delta_points"],
                                          "answers_changed": c["answers_changed"],
                                          "speedup": c["speedup"], "passed": c["passed"]}
                           for c in record["candidates"]}}
