"""The real Azure ML inference server (azmlinfsrv) on a loopback port, with the trained model."""

import pytest

from distilbert_catalog.quickstart import SCORE_SCRIPT
from distilbert_catalog.runner.endpoints import serve
from tests.conftest import FEAR, JOY


@pytest.fixture(scope="module")
def server(emotion_model):
    with serve(SCORE_SCRIPT, emotion_model.mlflow_model_dir) as running:
        yield running


def test_catalog_inputs_format(server):
    status, body = server.invoke({"inputs": {"input_string": [JOY, FEAR]}})
    assert status == 200
    assert [answer["label"] for answer in body] == ["joy", "fear"]
    assert all(isinstance(a["score"], float) and 0 < a["score"] <= 1 for a in body)


def test_input_data_with_params_and_pandas_split(server):
    status, body = server.invoke({"input_data": [JOY], "params": {"top_k": 6}})
    assert status == 200 and len(body) == 1 and len(body[0]) == 6
    assert abs(sum(a["score"] for a in body[0]) - 1.0) < 1e-4
    split = {"input_data": {"columns": ["input_string"], "index": [0],
                            "data": [[JOY]]}}
    status, same = server.invoke(split)
    assert status == 200 and same[0]["label"] == body[0][0]["label"]


@pytest.mark.parametrize("payload, message", [
    ("{broken", "not valid JSON"),
    ({"wrong": ["x"]}, "exactly one of"),
    ({"inputs": {"input_string": []}}, "no inputs"),
    ({"inputs": {"input_string": ["ok", 3]}}, "must be a string"),
    ({"input_data": ["ok"], "params": {"top_k": -1}}, "top_k"),
])
def test_bad_requests_get_400_with_a_message(server, payload, message):
    status, body = server.invoke(payload)
    assert status == 400, body
    assert message in body["error"]


def test_cli_invoke_posts_a_request_file(server, tmp_path, capsys):
    import json

    from distilbert_catalog.cli import main

    request = tmp_path / "request.json"
    request.write_text(json.dumps({"inputs": {"input_string": [JOY]}}))
    assert main(["invoke", "--request-file", str(request), "--url", server.url]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "joy"
    request.write_text('{"inputs": []}')
    assert main(["invoke", "--request-file", str(request), "--url", server.url]) == 1
