"""Hostile and malformed requests against the real azmlinfsrv, for every task.

One server per task folder (module-scoped, tiny random-init models of each head): every hostile
request must answer its exact status (413 past a size limit, else 400) with a message, the server
must stay healthy after each one (``GET /`` 200, no traceback in its log), and a valid request
must still answer 200 afterwards.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from distilbert_catalog.serving import SCORE_SCRIPT
from distilbert_catalog.runner.endpoints import invoke, serve
from distilbert_catalog.serving.limits import Limits
from distilbert_catalog.tasks import TASKS as DISCOVERED

LIMITS = Limits()  # the defaults: the servers below run without DISTILBERT_MAX_* overrides

#: one valid request per task: the first row of the task's own example request
VALID = {name: {"inputs": {c: values[:1] for c, values in task.example_request().items()}}
         for name, task in DISCOVERED.items()}
TASKS = sorted(VALID)


def _columns(task: str) -> list[str]:
    return list(VALID[task]["inputs"])


def _row(task: str, value) -> dict:
    """A one-item request whose every input column holds ``value``."""
    return {"inputs": {c: [value] for c in _columns(task)}}


def _good(task: str) -> str:
    return VALID[task]["inputs"][_columns(task)[0]][0]


def _items(task: str, n: int) -> dict:
    return {"inputs": {c: VALID[task]["inputs"][c] * n for c in _columns(task)}}


# kind -> request body builder (task -> str/bytes/dict/list); all tasks
GENERIC = {
    "invalid json": lambda t: "{broken",
    "empty body": lambda t: b"",
    "json null": lambda t: "null",
    "json number": lambda t: "42",
    "json string": lambda t: '"hello"',
    "empty list body": lambda t: "[]",
    "not utf-8": lambda t: b'{"inputs": ["\xff\xfe"]}',
    "utf-16 body": lambda t: json.dumps(VALID[t]).encode("utf-16"),
    "deep arrays": lambda t: "[" * 5000 + "]" * 5000,
    "deep objects": lambda t: '{"a":' * 5000 + "1" + "}" * 5000,
    "deep inside inputs": lambda t: '{"inputs": ' + "[" * 40 + '"x"' + "]" * 40 + "}",
    "body too large": lambda t: json.dumps(
        {"inputs": {c: ["word " * 1000] * (LIMITS.max_body_bytes // 5000 + 1)
                    for c in _columns(t)}}),
    "too many items": lambda t: _items(t, LIMITS.max_items + 1),
    "text too long": lambda t: _row(t, "word " * (LIMITS.max_text_chars // 5 + 1)),
    "empty object": lambda t: {},
    "both data keys": lambda t: {"inputs": VALID[t]["inputs"], "input_data": VALID[t]["inputs"]},
    "unknown top-level key": lambda t: {**VALID[t], "extra": 1},
    "inputs null": lambda t: {"inputs": None},
    "inputs number": lambda t: {"inputs": 42},
    "inputs string": lambda t: {"inputs": "just a string"},
    "inputs empty list": lambda t: {"inputs": []},
    "inputs empty columns": lambda t: {"inputs": {c: [] for c in _columns(t)}},
    "wrong column": lambda t: {"inputs": {"nope": ["x"]}},
    "extra column": lambda t: {"inputs": {**VALID[t]["inputs"], "nope": ["x"]}},
    "records mixed with scalars": lambda t: {"inputs": [{c: _good(t) for c in _columns(t)}, 7]},
    "value number": lambda t: _row(t, 3),
    "value null": lambda t: _row(t, None),
    "value object": lambda t: _row(t, {"text": "x"}),
    "value boolean": lambda t: _row(t, True),
    "value empty": lambda t: _row(t, ""),
    "value whitespace": lambda t: _row(t, "   \n\t "),
    "value lone surrogate": lambda t: '{"inputs": {%s}}' % ", ".join(
        f'"{c}": ["bad \\ud800 text [MASK]"]' for c in _columns(t)),
    "split rows wrong width": lambda t: {"input_data": {"columns": _columns(t), "index": [0],
                                                        "data": [["a", "b", "c"]]}},
    "split data not a list": lambda t: {"input_data": {"columns": _columns(t), "data": "rows"}},
    "params not an object": lambda t: {**VALID[t], "params": [1, 2]},
    "params unknown name": lambda t: {**VALID[t], "params": {"temperature": 0.5}},
    "top_k huge": lambda t: {**VALID[t], "params": {"top_k": 10 ** 9}},
    "top_k negative": lambda t: {**VALID[t], "params": {"top_k": -1}},
    "top_k string": lambda t: {**VALID[t], "params": {"top_k": "3"}},
    "top_k float": lambda t: {**VALID[t], "params": {"top_k": 1.5}},
    "top_k boolean": lambda t: {**VALID[t], "params": {"top_k": True}},
    "top_k null": lambda t: {**VALID[t], "params": {"top_k": None}},
    "top_k NaN literal": lambda t: json.dumps(VALID[t])[:-1] + ', "params": {"top_k": NaN}}',
    "integer with 5000 digits": lambda t: json.dumps(VALID[t])[:-1]
    + ', "params": {"top_k": ' + "9" * 5000 + "}}",
}

SPECIFIC = {
    "question-answering": {
        "question without context": {"inputs": {"question": ["Who?"]}},
        "unequal question and context lists": {"inputs": {"question": ["a?", "b?"],
                                                          "context": ["only one"]}},
        "question of 20,000 words": {"inputs": {"question": ["why " * 20_000],
                                                "context": ["a short context"]}},
        "question longer than max_question_len": {
            "inputs": {"question": [" ".join(["what"] * 100) + "?"], "context": ["It is."]}},
        "doc_stride too large": {**VALID["question-answering"], "params": {"doc_stride": 10_000}},
        "max_seq_len huge": {**VALID["question-answering"], "params": {"max_seq_len": 10 ** 6}},
        "null_score_threshold string": {**VALID["question-answering"],
                                        "params": {"null_score_threshold": "high"}},
        "handle_impossible_answer string": {**VALID["question-answering"],
                                            "params": {"handle_impossible_answer": "yes"}},
    },
    "fill-mask": {
        "no mask": {"inputs": {"input_string": ["Paris is the capital of France."]}},
        "too many masks": {"inputs": {"input_string": ["[MASK] " * 600]}},
        "return_scores string": {**VALID["fill-mask"], "params": {"return_scores": "yes"}},
    },
    "token-classification": {
        "word list with an empty word": {"inputs": {"input_string": [["John", "", "x"]]}},
        "word list with a number": {"inputs": {"input_string": [["John", 3]]}},
        "empty word list": {"inputs": {"input_string": [[]]}},
        "unknown aggregation_strategy": {**VALID["token-classification"],
                                         "params": {"aggregation_strategy": "bogus"}},
        "negative stride": {**VALID["token-classification"], "params": {"stride": -1}},
    },
    "text-classification": {
        "record list with a wrong key": {"inputs": [{"text_": "x"}]},
    },
}

per_task = pytest.mark.parametrize("server", TASKS, indirect=True)  # one server per task
#: the kinds past a size limit (413); every other hostile request is a 400
TOO_LARGE = {"body too large", "too many items", "text too long", "question of 20,000 words"}

def _model_for(task: str, tiny_model: Path, out: Path) -> Path:
    """A tiny random-init model folder with ``task``'s head (fill-mask: the tiny MLM itself)."""
    from distilbert_catalog.tiny import with_task_head

    return with_task_head(tiny_model, task, out)


STARTED: list[str] = []


@pytest.fixture(scope="module")
def server(request, tiny_model, tmp_path_factory):
    task = request.param
    STARTED.append(task)
    model = _model_for(task, tiny_model, tmp_path_factory.mktemp(task))
    with serve(SCORE_SCRIPT, model) as running:
        running.task = task
        status, body = running.invoke(VALID[task])
        assert status == 200, (body, running.log()[-3000:])
        yield running
        log = running.log()
        assert "Traceback" not in log, log[-5000:]


def _healthy(server) -> bool:
    with urllib.request.urlopen(server.base_url + "/", timeout=5) as response:
        return response.status == 200


def _assert_refused_with_message_and_healthy(server, payload, kind: str):
    status, body = server.invoke(payload, timeout=60)
    assert status == (413 if kind in TOO_LARGE else 400), (status, body)
    message = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
    assert isinstance(message, str) and len(message) > 10, body
    assert _healthy(server)


@per_task
@pytest.mark.parametrize("kind", list(GENERIC))
def test_hostile_request_gets_its_status_with_a_message(server, kind):
    _assert_refused_with_message_and_healthy(server, GENERIC[kind](server.task), kind)


@per_task
def test_task_specific_hostile_requests_get_their_status_with_a_message(server):
    """Each task's own hostile requests, against that task's server only (no cross-product of
    skipped cases; one parametrisation of the server fixture, so one server per task)."""
    for kind, payload in SPECIFIC.get(server.task, {}).items():
        _assert_refused_with_message_and_healthy(server, payload, kind)


@per_task
def test_limits_name_the_limit_and_the_value(server):
    status, body = server.invoke(_items(server.task, LIMITS.max_items + 1))
    assert status == 413
    assert str(LIMITS.max_items) in body["error"] and str(LIMITS.max_items + 1) in body["error"]
    status, body = server.invoke("[" * 5000 + "]" * 5000)
    assert status == 400 and str(LIMITS.max_json_depth) in body["error"]


@per_task
def test_get_on_score_is_405_with_a_message(server):
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(server.url, timeout=10)
    assert raised.value.code == 405
    assert "POST" in json.loads(raised.value.read())["error"]


@per_task
def test_valid_request_still_answers_after_the_abuse(server):
    # module-scoped: runs after the hostile cases of this task's server
    status, body = invoke(server.url, VALID[server.task])
    assert status == 200 and isinstance(body, list) and len(body) == 1
    assert server.process.poll() is None


def test_one_server_per_task():
    assert sorted(STARTED) == sorted(TASKS), STARTED
