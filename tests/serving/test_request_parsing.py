"""Every catalog request shape parses to the same rows; every malformed one is a BadRequest."""

import json

import pytest

from distilbert_catalog.errors import BadRequest
from distilbert_catalog.serving.request_parsing import parse_request
from distilbert_catalog.tasks import get_task

TC = get_task("text-classification")
TEXTS = ["i feel great", "i feel awful"]
ROWS = [{"input_string": t} for t in TEXTS]


@pytest.mark.parametrize("body", [
    {"inputs": {"input_string": TEXTS}},
    {"inputs": TEXTS},
    {"input_data": {"input_string": TEXTS}},
    {"input_data": TEXTS, "params": {}},
    {"input_data": {"columns": ["input_string"], "index": [0, 1], "data": [[t] for t in TEXTS]}},
    {"columns": ["input_string"], "index": [0, 1], "data": [[t] for t in TEXTS]},
    {"inputs": {"text": TEXTS}},
    [{"input_string": t} for t in TEXTS],
])
def test_all_request_formats(body):
    rows, params = parse_request(json.dumps(body), TC)
    assert rows == ROWS
    assert params == {"top_k": 1}


def test_params_are_parsed_and_checked():
    rows, params = parse_request({"input_data": TEXTS, "params": {"top_k": 3}}, TC)
    assert params == {"top_k": 3}
    with pytest.raises(BadRequest, match="top_k must be a int"):
        parse_request({"input_data": TEXTS, "params": {"top_k": "3"}}, TC)
    with pytest.raises(BadRequest, match="at least 1"):
        parse_request({"input_data": TEXTS, "params": {"top_k": 0}}, TC)
    with pytest.raises(BadRequest, match=r"unknown params \['temperature'\]"):
        parse_request({"input_data": TEXTS, "params": {"temperature": 1}}, TC)


@pytest.mark.parametrize("raw, message", [
    ("{not json", "not valid JSON"),
    ('{"input": ["x"]}', "exactly one of"),
    ('{"inputs": ["x"], "input_data": ["y"]}', "exactly one of"),
    ('{"inputs": []}', "no inputs"),
    ('{"inputs": {"input_string": []}}', "no inputs"),
    ('{"inputs": [1, 2]}', r"input_string\[0\] must be a string"),
    ('{"inputs": {"input_string": ["ok", null]}}', r"input_string\[1\] must be a string"),
    ('{"inputs": {"input_string": ["ok", " "]}}', r"input_string\[1\] is empty"),
    ('{"inputs": {"sentence": ["ok"]}}', r"missing \['input_string'\]"),
    ('{"inputs": "just a string"}', "object of lists or a list"),
    ('{"inputs": ["x"], "extra": 1}', r"unknown top-level keys \['extra'\]"),
    ('{"inputs": ["x"], "params": [1]}', "must be a JSON object"),
    ('{"columns": ["input_string"], "data": [["a", "b"]]}', "pandas split"),
    ("42", "object of lists or a list"),
])
def test_malformed_requests_say_what_to_fix(raw, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(raw, TC)
