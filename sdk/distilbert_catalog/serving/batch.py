"""Batch scoring: a mini-batch of files in, exactly one output row per input row out.

Each file (jsonl, json, csv, parquet, or txt with one input per line for one-column tasks) holds
rows with the task's input columns (or their aliases; other columns are ignored). A mini-batch is
scored in three steps:

1. read every file; a file that cannot be read becomes one error row (``row`` empty);
2. check every row with :meth:`Task.validate_row`; a bad row becomes an error row with the reason;
3. score all good rows of the mini-batch in one :meth:`Predictor.predict` call (length-sorted
   batches across files), then put the answers back in file and row order.

Neither a bad row nor a bad file sinks the mini-batch. The result is a DataFrame with the columns
``file``, ``row``, the task's output columns and ``error`` (empty when the row was scored); the
output columns are fixed once per process from the task's example request, so every mini-batch
has the same columns even when all its rows failed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..errors import BadRequest
from ..mlflow_model import answers_frame

FILE, ROW, ERROR = "file", "row", "error"
TABLE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")


@dataclass
class Item:
    """One input row of a mini-batch: where it came from, and either its request row or an error."""

    file: str
    row: int | None
    values: dict | None = None
    error: str | None = None


def _missing(value: Any) -> Any:
    """NaN / NA read from a table cell means no value (None)."""
    return None if isinstance(value, float) and math.isnan(value) or value is pd.NA else value


def _jsonl_records(path: Path) -> Iterator[tuple[dict | None, str | None]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                yield None, f"line {number} is not valid JSON ({exc})"
                continue
            if not isinstance(record, dict):
                yield None, f"line {number} must be a JSON object; got {type(record).__name__}"
            else:
                yield record, None


def read_records(path: str | Path, task) -> list[tuple[dict | None, str | None]]:
    """``(record, None)`` per row of ``path``, or ``(None, reason)`` for a row that is not a record.

    Raises :class:`BadRequest` when the file as a whole cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            return list(_jsonl_records(path))
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise BadRequest("a .json file must hold a JSON array of objects (use .jsonl for "
                                 "one object per line)")
            return [(r, None) if isinstance(r, dict) else
                    (None, f"item {i} must be a JSON object; got {type(r).__name__}")
                    for i, r in enumerate(data)]
        if suffix == ".txt":
            if len(task.input_columns) != 1:
                raise BadRequest(f".txt files hold one input per line; {task.name} needs "
                                 f"{list(task.input_columns)}: use jsonl, csv or parquet")
            lines = path.read_text(encoding="utf-8").splitlines()
            return [({task.input_columns[0]: line}, None) for line in lines if line.strip()]
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise BadRequest(f"unsupported file type '{suffix}'; use one of {list(TABLE_SUFFIXES)}")
    except BadRequest:
        raise
    except (OSError, UnicodeDecodeError, ValueError, ImportError) as exc:
        raise BadRequest(f"cannot read {suffix or 'the'} file: {type(exc).__name__}: {exc}") from None
    records = frame.to_dict("records")
    return [({k: _missing(v) for k, v in r.items()}, None) for r in records]


def file_items(path: str | Path, task) -> list[Item]:
    """Every row of one file as an :class:`Item`, validated by the task (never raises BadRequest)."""
    name = Path(path).name
    try:
        records = read_records(path, task)
    except BadRequest as exc:
        return [Item(name, None, error=f"file not scored: {exc}")]
    items = []
    for index, (record, problem) in enumerate(records):
        if problem is None:
            try:
                values = request_row(record, task, index)
            except BadRequest as exc:
                problem = str(exc)
        items.append(Item(name, index, error=problem) if problem else
                     Item(name, index, values=values))
    return items


def request_row(record: dict, task, index: int) -> dict:
    """The task's input columns of one record (aliases applied), checked by ``task.validate_row``."""
    record = {task.input_aliases.get(k, k): v for k, v in record.items()}
    missing = [c for c in task.input_columns if c not in record]
    if missing:
        aliases = {c: sorted(a for a, t in task.input_aliases.items() if t == c) for c in missing}
        named = ", ".join(f"'{c}'" + (f" (or {', '.join(map(repr, aliases[c]))})" if aliases[c]
                                      else "") for c in missing)
        raise BadRequest(f"row {index} has no column {named}; it has {sorted(record)}")
    return task.validate_row({c: record[c] for c in task.input_columns}, index)


def _cell(value: Any) -> Any:
    """Lists and dicts (ranked answers, entities) go into one CSV cell as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


class BatchScorer:
    """``scorer(paths)`` -> one DataFrame row per input row. Holds one predictor per process."""

    def __init__(self, predictor, params: dict | None = None):
        self.predictor = predictor
        self.task = predictor.task
        self.params = self.task.parse_params(params or {})
        example = pd.DataFrame(self.task.example_request()).to_dict("records")
        self.output_columns = list(self._answers(example).columns)
        reserved = {FILE, ROW, ERROR} & set(self.output_columns)
        if reserved:
            raise RuntimeError(f"{self.task.name} outputs {sorted(reserved)}, which batch output "
                               "uses for the row's origin; rename the task's output")
        self.columns = [FILE, ROW, *self.output_columns, ERROR]

    def _answers(self, rows: list[dict]) -> pd.DataFrame:
        frame = answers_frame(self.predictor.predict(rows, self.params))
        return frame.map(_cell) if len(frame) else frame

    def score(self, items: list[Item]) -> None:
        """Fill ``answers`` for the good items in one predictor call (errors for rows it rejects)."""
        good = [item for item in items if item.error is None]
        if not good:
            return
        try:
            answers = self._answers([item.values for item in good]).to_dict("records")
        except BadRequest:
            # a row the task only rejects once it sees it in the model's terms: find it, keep the rest
            answers = []
            for item in good:
                try:
                    answers.append(self._answers([item.values]).to_dict("records")[0])
                except BadRequest as exc:
                    answers.append(None)
                    item.error = str(exc)
        if len(answers) != len(good):
            raise RuntimeError(f"{self.task.name} returned {len(answers)} answers for "
                               f"{len(good)} rows")
        for item, answer in zip(good, answers):
            item.values = answer

    def __call__(self, mini_batch: list[str]) -> pd.DataFrame:
        items = [item for path in mini_batch for item in file_items(path, self.task)]
        self.score(items)
        records = [{FILE: item.file, ROW: item.row,
                    **((item.values or {}) if item.error is None else {}),
                    ERROR: item.error} for item in items]
        frame = pd.DataFrame.from_records(records, columns=self.columns)
        frame[ROW] = frame[ROW].astype("Int64")
        return frame
