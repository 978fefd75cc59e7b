"""Reading a SQuAD v2 predictions file: the evaluation component's input when it scores
predictions made elsewhere instead of running a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from ...errors import DataError

TEXT_KEYS = ("prediction_text", "prediction", "answer")
PROB_KEYS = ("no_answer_probability", "no_answer_prob", "na_prob")


def read_predictions(path: str | Path) -> tuple[dict[str, str], dict[str, float] | None]:
    """Predictions (id -> text) and no-answer probabilities (or None) from a file.

    Accepted: jsonl rows ``{"id", "prediction_text", "no_answer_probability"?}`` (the Hugging
    Face ``squad_v2`` metric layout), a JSON list of such rows, or the official SQuAD JSON
    object ``{id: text}``. Probabilities must be given for every row or for none.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("predictions file not found", source=str(path))
    text = path.read_text()
    whole = None
    if path.suffix.lower() != ".jsonl":
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None
    if isinstance(whole, dict) and "id" in whole and any(k in whole for k in TEXT_KEYS):
        whole = [whole]  # a one-line jsonl file
    if isinstance(whole, dict):
        for qid, value in whole.items():
            if not isinstance(value, str):
                raise DataError(f"the SQuAD predictions object maps ids to answer strings; "
                                f"id {qid!r} has {value!r}", source=str(path))
        return dict(whole), None
    if isinstance(whole, list):
        records = whole
    else:
        records = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise DataError(f"not valid JSON ({exc})", source=str(path), row=line_no) \
                    from None
    if not records:
        raise DataError("the predictions file is empty", source=str(path))
    predictions: dict[str, str] = {}
    probs: dict[str, float] = {}
    for row, record in enumerate(records, start=1):
        if not isinstance(record, Mapping) or "id" not in record:
            raise DataError('expected an object {"id", "prediction_text", '
                            '"no_answer_probability"?}', source=str(path), row=row)
        qid = str(record["id"])
        key = next((k for k in TEXT_KEYS if k in record), None)
        if key is None or not isinstance(record[key], str):
            raise DataError(f"expected a string prediction_text (\"\" for no answer), got "
                            f"{record.get(key or 'prediction_text')!r}", source=str(path),
                            row=row, column=key or "prediction_text")
        if qid in predictions:
            raise DataError(f"duplicate prediction for id {qid!r}", source=str(path), row=row,
                            column="id")
        predictions[qid] = record[key]
        prob_key = next((k for k in PROB_KEYS if k in record), None)
        if prob_key is not None:
            value = record[prob_key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value):
                raise DataError(f"expected a number, got {value!r}", source=str(path), row=row,
                                column=prob_key)
            probs[qid] = float(value)
    if probs and len(probs) != len(predictions):
        raise DataError(f"no_answer_probability is given for {len(probs)} of "
                        f"{len(predictions)} predictions; give it for every row or none",
                        source=str(path))
    return predictions, probs or None
