"""Model references: a hub id the hub cannot serve fails at once, saying what to pass instead;
the real hub-loading path stays for a hub that answers, and a cached model still loads offline.

Run as users run it: the installed ``distilbert-catalog`` in a fresh process, on a pipeline and on
a component whose ``model_name`` is a hub id, offline (``HF_HUB_OFFLINE=1``) and with the hub
merely unreachable (``HF_ENDPOINT`` at a closed loopback port, or at a loopback server that counts
connections and answers none: one connection means one probe and no retries).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distilbert_catalog.modeling import hub_unreachable
from tests.support import REPO

CLI = Path(sys.executable).with_name("distilbert-catalog")
HUB_ID = "distilbert-base-uncased"
INSTEAD = "--set model_name=$(distilbert-catalog pretrained)"
#: a backstop against a hang only: the run takes ~10 s on 2 quiet cores (mostly imports) but took
#: 40 s on 2 cores at load 8, as long as the old retry loop did on a quiet machine. Retries are
#: caught exactly instead: the hub client's "Retrying" lines, a traceback, the probe count.
FAIL_FAST_S = 180


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def silent_hub():
    """A loopback TCP server that accepts connections, counts them and closes each unanswered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    count, stop = [0], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            count[0] += 1
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", count
    finally:
        stop.set()
        thread.join()
        server.close()


@contextmanager
def answering_hub(status: int):
    """A loopback HTTP server answering every request with ``status``."""
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hub_env(offline: bool, endpoint: str | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    env["HF_HUB_OFFLINE"] = "1" if offline else "0"
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    return {**env, **extra}


def run_cli(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env,
                          timeout=300)
    return done, time.monotonic() - start


def assert_fails_fast_saying_what_to_pass(done, seconds: float, reason: str):
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert f"model '{HUB_ID}' is not a local folder" in done.stderr
    assert reason in done.stderr
    assert INSTEAD in done.stderr and "pytorch_model_path" in done.stderr
    assert "Traceback" not in output and "Retrying" not in output
    assert seconds < FAIL_FAST_S, (seconds, output[-2000:])


# --------------------------------------------------------------------------- as users run it

def test_pipeline_with_a_hub_id_offline_fails_at_once(tmp_path):
    done, seconds = run_cli(["run", str(REPO / "pipelines" / "fill-mask-evaluation.yaml"),
                             "--output-dir", str(tmp_path)], hub_env(offline=True))
    assert_fails_fast_saying_what_to_pass(done, seconds, "HF_HUB_OFFLINE=1 is set")
    assert "pipeline step 'evaluate' failed" in done.stderr


def test_pipeline_with_a_hub_id_and_no_hub_probes_it_once_without_retries(tmp_path):
    with silent_hub() as (endpoint, connections):
        done, seconds = run_cli(["run", str(REPO / "pipelines" / "fill-mask-evaluation.yaml"),
                                 "--output-dir", str(tmp_path)], hub_env(False, endpoint))
    assert_fails_fast_saying_what_to_pass(done, seconds, f"{endpoint} gave no answer")
    assert connections[0] == 1  # one probe; hub downloads would retry 5 times


def test_component_with_a_hub_id_and_a_closed_hub_port_fails_at_once(emotion_dir, tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    done, seconds = run_cli(
        ["run", str(REPO / "components/finetune/text_classification/spec.yaml"),
         "--set", f"model_name={HUB_ID}", "--input", f"train_data={emotion_dir}",
         "--output-dir", str(tmp_path)], hub_env(False, endpoint))
    assert_fails_fast_saying_what_to_pass(done, seconds, f"{endpoint} gave no answer")
    assert "Connection refused" in done.stderr


# --------------------------------------------------------------------------- the probe

def test_a_hub_that_answers_at_all_is_reachable():
    """Any HTTP answer, even 404, hands over to the real loading code, which reports it."""
    for status in (200, 401, 404, 500):
        with answering_hub(status) as endpoint:
            assert hub_unreachable(endpoint, "org/model") is None
    endpoint = f"http://127.0.0.1:{closed_port()}"
    assert hub_unreachable(endpoint, "org/model").startswith(f"{endpoint} gave no answer:")


def fake_hub_cache(cache: Path, repo_id: str, model: Path) -> Path:
    """``model``'s files laid out as the Hugging Face cache holds a downloaded snapshot."""
    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in model.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    return snapshot


RESOLVE = ("from transformers import AutoModelForMaskedLM, AutoTokenizer; "
           "from distilbert_catalog.modeling import resolve_model_source; "
           "source = resolve_model_source({0!r})[0]; print(source); "
           "AutoTokenizer.from_pretrained(source); "
           "print(type(AutoModelForMaskedLM.from_pretrained(source)).__name__)")


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "unreachable"])
def test_a_cached_hub_model_still_loads_without_the_hub(offline, tiny_model, tmp_path):
    repo_id = "catalog-test/tiny-distilbert"
    snapshot = fake_hub_cache(tmp_path / "hub", repo_id, tiny_model)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = hub_env(offline, endpoint, HF_HUB_CACHE=str(tmp_path / "hub"))
    done = subprocess.run([sys.executable, "-c", RESOLVE.format(repo_id)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [str(snapshot), "DistilBertForMaskedLM"]
    assert "Retrying" not in done.stderr
