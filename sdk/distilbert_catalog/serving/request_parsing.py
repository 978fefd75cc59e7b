"""Turn any catalog request body into rows of task inputs plus params, or raise BadRequest.

Accepted shapes (``COLUMNS`` stands for the task's input columns, e.g. ``input_string`` or
``question`` + ``context``):

- ``{"inputs": {COLUMN: [...], ...}}``                      the catalog's classic form
- ``{"inputs": [...]}``                                      strings (one-column tasks) or objects
- ``{"input_data": <any of these>, "params": {...}}``        the newer form
- ``{"columns": [...], "index": [...], "data": [[...]]}``    pandas ``split`` orient
- ``[{COLUMN: ..., ...}, ...]``                             a list of records
Each may carry ``"params"`` (or ``"parameters"``) next to the data.

Given :class:`~.limits.Limits`, the raw text's nesting depth is checked before it is parsed, and
the item count, every cell's length and ``top_k`` before the task sees a row (no tokenisation).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import BadRequest
from .limits import Limits

DATA_KEYS = ("inputs", "input_data")
PARAM_KEYS = ("params", "parameters")
SPLIT_KEYS = {"columns", "data"}


def parse_request(raw: str | bytes | Mapping | list, task,
                  limits: Limits | None = None) -> tuple[list[dict], dict]:
    """Return ``(rows, params)`` for ``task``; every row has exactly the task's input columns.

    ``limits`` (None: unbounded) are checked before parsing (JSON depth) and before any row
    reaches the task (items, characters per cell, ``top_k``).
    """
    if isinstance(raw, (str, bytes, bytearray)):
        if limits is not None:
            limits.check_body_size(len(raw))  # a str's length never exceeds its UTF-8 bytes
            raw = raw if isinstance(raw, str) else _decode(raw)
            limits.check_json_depth(raw)
        body = _load_json(raw)
    else:
        body = raw
    params: Mapping[str, Any] = {}
    if isinstance(body, Mapping):
        if SPLIT_KEYS <= body.keys():
            data = body
            params = _params(body, allowed=SPLIT_KEYS | {"index", *PARAM_KEYS})
        else:
            data_keys = [k for k in DATA_KEYS if k in body]
            if len(data_keys) != 1:
                raise BadRequest(
                    f"the request needs exactly one of {list(DATA_KEYS)} (or a pandas split "
                    f"object with 'columns' and 'data'); got keys {sorted(body)}. "
                    f"Example: {example_body(task)}")
            data = body[data_keys[0]]
            params = _params(body, allowed={data_keys[0], *PARAM_KEYS})
    else:
        data = body
    rows = _rows(data, task, limits)
    parsed = task.parse_params(params)
    if limits is not None:
        limits.check_params(parsed, task.params)
    return rows, parsed


def example_body(task) -> str:
    return json.dumps({"inputs": {c: ["..."] for c in task.input_columns}})


def _decode(raw: bytes) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not UTF-8 ({exc}); send JSON encoded as "
                         f"UTF-8") from None


def _load_json(raw) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise BadRequest("the request JSON is nested too deeply to parse; catalog requests need "
                         "at most 4-5 levels") from None
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc}); send a JSON object "
                         f"such as {{\"inputs\": ...}}") from None


def _params(body: Mapping, allowed: set[str]) -> Mapping[str, Any]:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown top-level keys {unknown}; allowed: {sorted(allowed)}")
    given = [k for k in PARAM_KEYS if k in body]
    params = body[given[0]] if given else {}
    if not isinstance(params, Mapping):
        raise BadRequest(f"'{given[0]}' must be a JSON object of parameters; got {params!r}")
    return params


def _rows(data: Any, task, limits: Limits | None = None) -> list[dict]:
    columns = task.input_columns
    if isinstance(data, Mapping) and SPLIT_KEYS <= data.keys():
        data = _split_to_columns(data)
    if isinstance(data, Mapping):
        data = {task.input_aliases.get(k, k): v for k, v in data.items()}
        _check_columns(data.keys(), task)
        lists = {c: data[c] if isinstance(data[c], list) else [data[c]] for c in columns}
        lengths = {c: len(v) for c, v in lists.items()}
        if limits is not None:
            limits.check_items(max(lengths.values()))
        if len(set(lengths.values())) > 1:
            raise BadRequest(f"input lists must have the same length; got {lengths}")
        rows = [{c: lists[c][i] for c in columns} for i in range(lengths[columns[0]])]
    elif isinstance(data, list):
        if limits is not None:
            limits.check_items(len(data))
        if len(columns) == 1 and all(not isinstance(x, Mapping) for x in data):
            rows = [{columns[0]: x} for x in data]
        elif all(isinstance(x, Mapping) for x in data):
            rows = []
            for i, record in enumerate(data):
                record = {task.input_aliases.get(k, k): v for k, v in record.items()}
                _check_columns(record.keys(), task, where=f"item {i}: ")
                rows.append({c: record[c] for c in columns})
        else:
            raise BadRequest(f"inputs must be a list of objects with keys {list(columns)}")
    else:
        raise BadRequest(f"inputs must be an object of lists or a list; got {type(data).__name__}."
                         f" Example: {example_body(task)}")
    if not rows:
        raise BadRequest("no inputs: send at least one item")
    if limits is not None:
        for i, row in enumerate(rows):
            for column in columns:
                limits.check_cell(column, i, row[column])
    return [task.validate_row(row, i) for i, row in enumerate(rows)]


def _split_to_columns(split: Mapping) -> dict[str, list]:
    columns, data = split["columns"], split["data"]
    if not isinstance(columns, list) or not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in data):
        raise BadRequest("a pandas split object needs 'columns' (a list) and 'data' (a list of "
                         "rows, each as long as 'columns')")
    return {c: [r[j] for r in data] for j, c in enumerate(columns)}


def _check_columns(given, task, where: str = "") -> None:
    given = set(given)
    missing = [c for c in task.input_columns if c not in given]
    unknown = sorted(given - set(task.input_columns))
    if missing or unknown:
        problems = ([f"missing {missing}"] if missing else []) + (
            [f"unknown {unknown}"] if unknown else [])
        raise BadRequest(f"{where}{' and '.join(problems)} input keys; {task.name} expects "
                         f"{list(task.input_columns)}, e.g. {example_body(task)}")
