"""Local online endpoint (real azmlinfsrv) and batch endpoint emulation."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import urllib.request

import pandas as pd
import pytest

from distilbert_catalog.runner.endpoints import (
    BatchRunError,
    EndpointError,
    invoke,
    run_batch,
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

BATCH_DRIVER = textwrap.dedent("""\
    import os
    import pandas as pd

    CALLS = {"init": 0}

    def init():
        global PREFIX, OUT
        CALLS["init"] += 1
        with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as f:
            PREFIX = f.read().strip()
        OUT = os.environ["AZUREML_BI_OUTPUT_PATH"]
        with open(os.path.join(OUT, "calls.txt"), "a") as f:
            f.write("init\\n")

    def run(mini_batch):
        with open(os.path.join(OUT, "calls.txt"), "a") as f:
            f.write(f"run {len(mini_batch)}\\n")
        rows = []
        for path in mini_batch:
            with open(path) as f:
                text = f.read()
            rows.append({"file": os.path.basename(path), "label": f"{PREFIX}-{len(text)}"})
        return pd.DataFrame(rows)

    def shutdown():
        with open(os.path.join(OUT, "calls.txt"), "a") as f:
            f.write("shutdown\\n")
    """)

LIST_DRIVER = textwrap.dedent("""\
    import os

    def init():
        pass

    def run(mini_batch):
        if any(p.endswith("bad.txt") for p in mini_batch):
            raise ValueError("cannot score bad.txt")
        return [os.path.basename(p) + ",ok" for p in mini_batch]
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
        with serve(script, model_dir, startup_timeout=30):
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


def _five_files(folder):
    folder.mkdir()
    for i in range(5):
        (folder / f"doc{i}.txt").write_text("x" * (i + 1))
    return folder


def test_batch_run_five_files_in_mini_batches_of_two(tmp_path, model_dir):
    script = tmp_path / "driver.py"
    script.write_text(BATCH_DRIVER)
    inputs = _five_files(tmp_path / "inputs")
    out = tmp_path / "out"
    before = {k: os.environ.get(k) for k in ("AZUREML_MODEL_DIR", "AZUREML_BI_OUTPUT_PATH")}
    path_before = list(sys.path)

    output_file, summary = run_batch(script, model_dir, inputs, out, mini_batch_size=2)

    assert output_file == (out / "predictions.csv").resolve()
    assert summary["files"] == 5 and summary["mini_batches"] == 3
    assert summary["rows"] == 5 and summary["failed_files"] == 0
    # append_row: one row per line, space-separated, no header
    assert output_file.read_text().splitlines() == [f"doc{i}.txt m1-{i + 1}" for i in range(5)]
    frame = pd.read_csv(output_file, sep=" ", header=None, names=["file", "label"])
    assert list(frame["file"]) == [f"doc{i}.txt" for i in range(5)]
    # init once, run per mini-batch, shutdown at the end; AZUREML_BI_OUTPUT_PATH was the output folder
    assert (out / "calls.txt").read_text().split("\n")[:-1] == ["init", "run 2", "run 2", "run 1", "shutdown"]
    # the process is left as it was
    assert {k: os.environ.get(k) for k in before} == before
    assert sys.path == path_before


def test_batch_run_list_results_header_and_single_file(tmp_path, model_dir):
    script = tmp_path / "driver.py"
    script.write_text(BATCH_DRIVER)
    inputs = _five_files(tmp_path / "inputs")
    output_file, summary = run_batch(script, model_dir, inputs / "doc3.txt", tmp_path / "one",
                                     output_file="scores.txt", dataframe_header=True)
    assert summary["files"] == 1 and summary["mini_batches"] == 1
    assert output_file.read_text().splitlines() == ["file label", "doc3.txt m1-4"]

    lister = tmp_path / "lister.py"
    lister.write_text(LIST_DRIVER)
    output_file, summary = run_batch(lister, model_dir, inputs, tmp_path / "list", mini_batch_size=2)
    assert output_file.read_text().splitlines() == [f"doc{i}.txt,ok" for i in range(5)]


def test_batch_error_threshold(tmp_path, model_dir):
    lister = tmp_path / "lister.py"
    lister.write_text(LIST_DRIVER)
    inputs = _five_files(tmp_path / "inputs")
    (inputs / "bad.txt").write_text("?")  # sorts first: mini-batch 1 = [bad.txt, doc0.txt]

    # Azure ML's default (-1): failures are counted, the run goes on
    output_file, summary = run_batch(lister, model_dir, inputs, tmp_path / "tolerant", mini_batch_size=2)
    assert summary["failed_files"] == 2 and summary["rows"] == 4
    assert "cannot score bad.txt" in summary["errors"][0]

    with pytest.raises(BatchRunError, match="error_threshold=1"):
        run_batch(lister, model_dir, inputs, tmp_path / "strict", mini_batch_size=2, error_threshold=1)


def test_batch_argument_errors(tmp_path, model_dir):
    script = tmp_path / "driver.py"
    script.write_text(BATCH_DRIVER)
    with pytest.raises(BatchRunError, match="not found"):
        run_batch(script, model_dir, tmp_path / "missing", tmp_path / "out")
    with pytest.raises(BatchRunError, match="mini_batch_size"):
        run_batch(script, model_dir, script, tmp_path / "out", mini_batch_size=0)
    with pytest.raises(BatchRunError, match="plain file name"):
        run_batch(script, model_dir, script, tmp_path / "out", output_file="../escape.csv")
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def init():\n    pass\n\ndef run(mini_batch):\n    return {'n': len(mini_batch)}\n")
    with pytest.raises(BatchRunError, match="must return a pandas DataFrame or a list"):
        run_batch(wrong, model_dir, script, tmp_path / "out")
