"""The real Azure ML inference server (azmlinfsrv) on a loopback port, with the trained model."""

import pytest

from distilbert_catalog.serving import SCORE_SCRIPT
from distilbert_catalog.runner.endpoints import serve
from tests.support import FEAR, JOY


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


def test_cli_invoke_posts_a_request_file(server, tmp_path):
    """As a user runs it: the installed command in a fresh process."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    cli = [str(Path(sys.executable).with_name("distilbert-catalog")), "invoke", "--request-file",
           str(tmp_path / "request.json"), "--url", server.url]
    (tmp_path / "request.json").write_text(json.dumps({"inputs": {"input_string": [JOY]}}))
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["label"] == "joy"
    (tmp_path / "request.json").write_text('{"inputs": []}')
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "no inputs" in done.stdout
