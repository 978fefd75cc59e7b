"""Request limits and the online error boundary, without a server (the real server is exercised
by test_hostile_requests.py)."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from distilbert_catalog.errors import BadRequest, PayloadTooLarge
from distilbert_catalog.mlflow_model import CatalogModel
from distilbert_catalog.serving.limits import Limits, json_depth
from distilbert_catalog.serving.online import OnlineScorer
from distilbert_catalog.serving.request_parsing import parse_request
from distilbert_catalog.tasks import get_task

TC, QA = get_task("text-classification"), get_task("question-answering")


class Stub:
    """A predictor whose predict answers, or fails like an engine bug."""

    def __init__(self, task, fail: Exception | None = None):
        self.task, self.fail, self.calls = task, fail, []

    def predict(self, rows, params):
        self.calls.append(rows)
        if self.fail:
            raise self.fail
        return [{"label": "x", "score": 1.0} for _ in rows]


def test_limits_come_from_the_environment_and_refuse_nonsense():
    limits = Limits.from_env({"DISTILBERT_MAX_ITEMS": "3", "DISTILBERT_MAX_TOP_K": " 7 "})
    assert (limits.max_items, limits.max_top_k) == (3, 7)
    assert limits.max_text_chars == Limits().max_text_chars
    for bad in ("0", "-2", "lots"):
        with pytest.raises(ValueError, match="DISTILBERT_MAX_BODY_BYTES"):
            Limits.from_env({"DISTILBERT_MAX_BODY_BYTES": bad})


@pytest.mark.parametrize("text, depth", [
    ('{"inputs": {"input_string": ["a"]}}', 3),
    ('{"inputs": ["[[[[", "{{{", "\\"[["]}', 2),  # brackets inside strings do not count
    ("[" * 40 + "]" * 40, 40),
    ('"just a string"', 0),
])
def test_json_depth_counts_only_structure(text, depth):
    assert json_depth(text) == depth


def test_limits_are_checked_before_the_task_sees_a_row():
    limits = Limits(max_items=2, max_text_chars=10, max_top_k=5, max_json_depth=4,
                    max_body_bytes=200)
    cases = [
        ({"inputs": ["a", "b", "c"]}, PayloadTooLarge, "3 inputs, more than the limit of 2"),
        ({"inputs": ["x" * 11]}, PayloadTooLarge, "11 characters, more than the limit of 10"),
        ({"inputs": ["a"], "params": {"top_k": 6}}, BadRequest, "top_k is 6, more than the "
                                                                "limit of 5"),
        ('{"inputs": [[[[["a"]]]]]}', BadRequest, "nested more than 4 levels"),
        ('{"inputs": ["' + "x" * 300 + '"]}', PayloadTooLarge, "more than the limit of 200"),
        (b'{"inputs": ["\xff"]}', BadRequest, "not UTF-8"),
        ('{"inputs": ["\\ud800"]}', BadRequest, "lone surrogate"),
    ]
    for body, error, message in cases:
        with pytest.raises(error, match=message):
            parse_request(body, TC, limits)
    rows, params = parse_request({"inputs": ["a", "b"], "params": {"top_k": 5}}, TC, limits)
    assert len(rows) == 2 and params["top_k"] == 5
    # without limits (library use), only the request's validity is checked
    assert len(parse_request({"inputs": ["a"] * 300}, TC)[0]) == 300


def test_deep_json_without_limits_is_still_a_400_not_a_recursion_error():
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_request("[" * 100_000 + "]" * 100_000, TC)


def test_error_boundary_client_errors_keep_their_status_bugs_are_500_with_a_request_id(caplog):
    scorer = OnlineScorer(Stub(TC), Limits(max_items=1))
    assert scorer('{"inputs": ["ok"]}') == [{"label": "x", "score": 1.0}]
    too_many = scorer('{"inputs": ["a", "b"]}')
    assert too_many.status_code == 413 and "limit of 1" in json.loads(too_many.data)["error"]
    assert scorer('{"inputs": 3}').status_code == 400

    broken = OnlineScorer(Stub(TC, fail=RuntimeError("logit rows do not match")), Limits())
    with caplog.at_level(logging.ERROR, logger="distilbert_catalog.serving"):
        response = broken('{"inputs": ["ok"]}', request_id="req-123")
    body = json.loads(response.data)
    assert response.status_code == 500 and body["request_id"] == "req-123"
    assert "logit rows do not match" not in body["error"]  # internals stay in the log
    assert "req-123" in caplog.text and "Traceback" in caplog.text
    assert "logit rows do not match" in caplog.text


def test_pyfunc_predict_validates_through_the_request_parser():
    model = CatalogModel()
    model.predictor = Stub(QA)
    with pytest.raises(BadRequest, match=r"missing \['context'\]"):
        model.predict(None, pd.DataFrame({"question": ["Who?"]}))
    with pytest.raises(BadRequest, match=r"question\[0\]"):
        model.predict(None, pd.DataFrame({"question": [None], "context": ["c"]}))
    with pytest.raises(BadRequest, match="unknown params"):
        model.predict(None, pd.DataFrame({"question": ["q"], "context": ["c"]}),
                      params={"nope": 1})
    out = model.predict(None, pd.DataFrame({"question": ["q"], "context": ["c"], "id": [1]}))
    assert len(out) == 1 and model.predictor.calls[-1] == [{"question": "q", "context": "c"}]
