"""Batch scoring: mini-batches of files in, one output row per input row.

Each file (jsonl, csv, parquet, or txt with one input per line for one-column tasks) holds rows
with the task's input columns. All rows of a mini-batch go through the model together, so the
length-sorted batching works across files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import BadRequest
from ..packaging import answers_frame

READERS = {
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    ".json": lambda p: pd.read_json(p, lines=True, dtype=False),
    ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
    ".parquet": pd.read_parquet,
}


def read_rows(path: str | Path, task) -> list[dict]:
    path = Path(path)
    if path.suffix.lower() == ".txt" and len(task.input_columns) == 1:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        return [{task.input_columns[0]: line} for line in lines]
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise BadRequest(f"{path.name}: unsupported file type; use {sorted(READERS)} or .txt")
    frame = reader(path).rename(columns=dict(task.input_aliases))
    missing = [c for c in task.input_columns if c not in frame.columns]
    if missing:
        raise BadRequest(f"{path.name}: missing columns {missing}; the file has "
                         f"{list(frame.columns)}")
    return frame[list(task.input_columns)].to_dict("records")


class BatchScorer:
    def __init__(self, predictor, params: dict | None = None):
        self.predictor = predictor
        self.params = predictor.task.parse_params(params or {})

    def __call__(self, mini_batch: list[str]) -> pd.DataFrame:
        rows, origin = [], []
        for path in mini_batch:
            file_rows = read_rows(path, self.predictor.task)
            rows += file_rows
            origin += [(Path(path).name, i) for i in range(len(file_rows))]
        if not rows:
            return pd.DataFrame(columns=["file", "row"])
        answers = answers_frame(self.predictor.predict(rows, self.params))
        if "predictions" in answers:
            answers["predictions"] = answers["predictions"].map(json.dumps)
        index = pd.DataFrame(origin, columns=["file", "row"])
        return pd.concat([index, answers], axis=1)
