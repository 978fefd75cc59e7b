"""Local online endpoint (real azmlinfsrv); the batch runner is tested in test_batch_runner.py."""

from __future__ import annotations

import socket
import textwrap
import urllib.request

import pytest

from distilbert_catalog.runner.endpoints import (
    EndpointError,
    invoke,
    serve,
)

ONLINE_SCORE = textwrap.dedent("""\
    import json, os
    from azureml.contrib.services.aml_response import AMLResponse

    MODEL = None

    def init():
        global MODEL
        with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as f:
            MODEL = f.read().strip()

    def run(raw_data):
        data = json.loads(raw_data)
        if "inputs" not in data:
            return AMLResponse(json.dumps({"error": "missing 'inputs'"}), 400)
        return {"model": MODEL, "predictions": [len(str(x)) for x in data["inputs"]]}
    """)

BROKEN_INIT = textwrap.dedent("""\
    def init():
        raise RuntimeError("weights are corrupt")

    def run(raw_data):
        return raw_data
    """)

@pytest.fixture()
def model_dir(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("m1\n")
    return model


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serve_real_inference_server_then_stop(tmp_path, model_dir):
    script = tmp_path / "app" / "score.py"
    script.parent.mkdir()
    script.write_text(ONLINE_SCORE)

    with serve(script, model_dir) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/score"
        status, body = invoke(server.url, {"inputs": ["a", "abcd"]})
        assert status == 200
        assert body == {"model": "m1", "predictions": [1, 4]}

        status, body = invoke(server.url, {"wrong": 1})  # AMLResponse(…, 400) passes through
        assert status == 400
        assert body == {"error": "missing 'inputs'"}

        status, body = server.invoke('{"inputs": [1, 22]}')  # a JSON string is sent as is
        assert (status, body["predictions"]) == (200, [1, 2])

        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5) as response:
            assert response.status == 200  # liveness route
        process, port = server.process, server.port

    assert process.poll() is not None  # stopped, not left behind
    assert _port_closed(port)
    with pytest.raises(EndpointError, match="could not reach"):
        invoke(f"http://127.0.0.1:{port}/score", {"inputs": []}, timeout=2)


def test_serve_reports_a_failing_init_with_the_server_log(tmp_path, model_dir):
    script = tmp_path / "broken.py"
    script.write_text(BROKEN_INIT)
    with pytest.raises(EndpointError, match="weights are corrupt"):
        with serve(script, model_dir, startup_timeout=120):
            pytest.fail("the server should not have come up")


def test_serve_refuses_a_busy_port(tmp_path, model_dir):
    script = tmp_path / "score.py"
    script.write_text(ONLINE_SCORE)
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        with pytest.raises(EndpointError, match="already in use"):
            with serve(script, model_dir, port=busy.getsockname()[1]):
                pass
