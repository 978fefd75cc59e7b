"""The one ``metrics.json`` schema shared by every task, stage and model card.

```
{"schema_version": 1, "task": str, "stage": "evaluation" | "finetune" | "distillation", "model": str,
 "dataset": str, "split": str, "n_examples": int,
 "metrics": {name: number},            # headline numbers, flat
 "details": {...},                     # task-specific: per_class / per_type / thresholds
 "artifacts": {name: relative path},   # plots, predictions, confusion matrix
 "config": {...}}                      # arguments that produced these numbers
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILENAME = "metrics.json"
SCHEMA_VERSION = 1
REQUIRED = ("task", "stage", "model", "dataset", "split", "n_examples", "metrics")


def write_metrics(out_dir: str | Path, *, task: str, stage: str, model: str, dataset: str,
                  split: str, n_examples: int, metrics: dict[str, float],
                  details: dict[str, Any] | None = None, artifacts: dict[str, str] | None = None,
                  config: dict[str, Any] | None = None) -> Path:
    record = {"schema_version": SCHEMA_VERSION, "task": task, "stage": stage, "model": model,
              "dataset": dataset, "split": split, "n_examples": n_examples, "metrics": metrics,
              "details": details or {}, "artifacts": artifacts or {}, "config": config or {}}
    path = Path(out_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
    return path


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read metrics.json from a file or the folder that holds it, checking required keys."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: expected an evaluation or fine-tuning output")
    record = json.loads(path.read_text())
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"{path} is missing {missing}; it is not a distilbert-catalog metrics file")
    return record
