"""Local stand-ins for Azure ML online and batch endpoints.

* :func:`serve` starts the real Azure ML inference server (``azmlinfsrv`` from
  ``azureml-inference-server-http``, the same server the managed online endpoint images run) with a
  scoring script and a model folder, and stops it when the ``with`` block ends.
* :func:`invoke` posts a JSON payload to a scoring URL.
* :func:`run_batch` emulates a batch deployment (parallel run, ``output_action: append_row``):
  worker processes, retries, resume; see :mod:`distilbert_catalog.runner.batch`.

The server binds ``127.0.0.1`` by default (``host=`` / ``serve --host`` to choose): azmlinfsrv
1.x itself always binds ``0.0.0.0``, so it is started through :mod:`distilbert_catalog.runner.infsrv`,
which runs azmlinfsrv's own entry point with the chosen host. Stopping a server stops its process
group (gunicorn master and workers) and frees the port; ``serve_forever`` does so on SIGINT,
SIGTERM and SIGHUP too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from distilbert_catalog.errors import CatalogError
from distilbert_catalog.runner.process import check_script_and_model, stop

__all__ = [
    "EndpointError",
    "BatchRunError",
    "LocalServer",
    "find_server_executable",
    "serve",
    "serve_forever",
    "invoke",
    "run_batch",
]

HOST = "127.0.0.1"


class EndpointError(CatalogError, RuntimeError):
    """The local inference server could not start, or could not be reached."""


# --------------------------------------------------------------------------------------------------
# Online: azmlinfsrv


@dataclass
class LocalServer:
    """A running azmlinfsrv: ``url`` is the ``/score`` URL, ``port`` its port."""

    url: str
    port: int
    process: subprocess.Popen = field(repr=False)
    log_path: Path
    host: str = HOST  #: the address the server binds

    @property
    def base_url(self) -> str:
        return f"http://{_client_host(self.host)}:{self.port}"

    def invoke(self, payload: Any, *, timeout: float = 60.0) -> tuple[int, Any]:
        return invoke(self.url, payload, timeout=timeout)

    def log(self) -> str:
        """Everything the server has printed so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def find_server_executable() -> Path:
    """``azmlinfsrv`` next to ``sys.executable`` (i.e. from this environment), else on PATH."""
    here = Path(sys.executable).parent
    for name in ("azmlinfsrv", "azmlinfsrv.exe"):
        if (here / name).is_file():
            return here / name
    import shutil

    found = shutil.which("azmlinfsrv")
    if found:
        return Path(found)
    raise EndpointError(
        "azmlinfsrv not found next to the Python interpreter; install the azureml-inference-server-http package"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))  # the server binds 0.0.0.0, so the port must be free on every interface
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
        return True


def _client_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host`` (all interfaces -> loopback)."""
    return HOST if host in ("", "0.0.0.0") else host


def _server_command(entry_script: Path, model_dir: Path, port: int, host: str = HOST) -> list[str]:
    find_server_executable()  # the package must be installed in this environment
    return [sys.executable, "-m", "distilbert_catalog.runner.infsrv", "--host", host,
            "--entry_script", str(entry_script), "--model_dir", str(model_dir), "--port", str(port)]


def _server_env(entry_script: Path, model_dir: Path, env: Mapping[str, str | None] | None) -> dict[str, str]:
    child = dict(os.environ)
    child.pop("SEPERATE_HEALTH_ENDPOINT", None)  # (sic) would open a second listener on port 5000
    child["AZUREML_MODEL_DIR"] = str(model_dir)
    child["AML_APP_ROOT"] = str(entry_script.parent)  # sibling modules of the script are importable
    child.setdefault("PYTHONUNBUFFERED", "1")
    if _gunicorn_has_setting("control_socket_disable"):
        # gunicorn >= 24 opens one control socket per user (~/.gunicorn/gunicorn.ctl); two local servers
        # would fight over it, and we never use it.
        child["GUNICORN_CMD_ARGS"] = (child.get("GUNICORN_CMD_ARGS", "") + " --no-control-socket").strip()
    for key, value in (env or {}).items():
        if value is None:
            child.pop(key, None)
        else:
            child[str(key)] = str(value)
    return child


def _gunicorn_has_setting(name: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except Exception:  # noqa: BLE001 - gunicorn missing or changed: just don't add the flag
        return False
    return any(getattr(setting, "name", None) == name for setting in KNOWN_SETTINGS)


def _tail(text: str, lines: int = 60) -> str:
    """The useful part of a server log: the first traceback (the user's error) and the last lines."""
    all_lines = text.splitlines()
    first = next((i for i, line in enumerate(all_lines) if "Traceback (most recent call last)" in line), None)
    if first is None or len(all_lines) <= lines:
        return "\n".join(all_lines[-lines:])
    start = max(0, first - 2)
    head = all_lines[start:start + 40]
    rest = all_lines[start + 40:]
    return "\n".join(head + (["..."] + rest[-6:] if rest else []))


@contextlib.contextmanager
def serve(
    entry_script: str | os.PathLike,
    model_dir: str | os.PathLike,
    port: int | None = None,
    env: Mapping[str, str | None] | None = None,
    *,
    startup_timeout: float = 120.0,
    host: str = HOST,
) -> Iterator[LocalServer]:
    """Run azmlinfsrv with ``entry_script`` and ``model_dir`` for the duration of a ``with`` block.

    Picks a free port unless ``port`` is given (which must then be free). Sets
    ``AZUREML_MODEL_DIR=model_dir``, waits until ``GET http://127.0.0.1:PORT/`` answers (raising
    :class:`EndpointError` with the server log if it exits or ``startup_timeout`` passes), yields a
    :class:`LocalServer` and always stops the server afterwards.
    """
    script, model = check_script_and_model(entry_script, model_dir, EndpointError)
    if port is None:
        port = _free_port()
    elif not _port_is_free(port):
        raise EndpointError(f"port {port} is already in use; pick another or leave port unset")
    argv = _server_command(script, model, port, host)

    log_fd, log_name = tempfile.mkstemp(prefix="azmlinfsrv-", suffix=".log")
    log_path = Path(log_name)
    process: subprocess.Popen | None = None
    try:
        with os.fdopen(log_fd, "wb") as log_file:
            process = subprocess.Popen(
                argv, cwd=script.parent, env=_server_env(script, model, env), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=(os.name == "posix"),
            )
        server = LocalServer(url=f"http://{_client_host(host)}:{port}/score", port=port, process=process,
                             log_path=log_path, host=host)
        _wait_until_ready(server, startup_timeout)
        yield server
    finally:
        if process is not None:
            stop(process, group=True)
        with contextlib.suppress(OSError):
            log_path.unlink()


def _wait_until_ready(server: LocalServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = server.process.poll()
        if code is not None:
            raise EndpointError(
                f"azmlinfsrv exited with code {code} before it was ready (a failing init() or import in the "
                f"scoring script is the usual cause). Server log:\n{_tail(server.log())}"
            )
        try:
            with urllib.request.urlopen(server.base_url + "/", timeout=2) as response:
                response.read()
            break
        except urllib.error.HTTPError:
            break  # it answered, just not with 200: the server is up
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise EndpointError(
                f"azmlinfsrv did not answer on {server.base_url}/ within {timeout:.0f}s. Server log:\n"
                f"{_tail(server.log())}"
            )
        time.sleep(0.2)
    if server.process.poll() is not None:  # something else answered on that port
        raise EndpointError(f"azmlinfsrv exited right after start. Server log:\n{_tail(server.log())}")


def serve_forever(
    entry_script: str | os.PathLike,
    model_dir: str | os.PathLike,
    port: int = 5001,
    env: Mapping[str, str | None] | None = None,
    *,
    host: str = HOST,
) -> int:
    """Run azmlinfsrv in the foreground (its log goes to this terminal) until it exits or this
    process gets SIGINT (Ctrl-C), SIGTERM or SIGHUP; then stop the server's whole process group
    (master and workers) so no process is left holding the port. Returns the exit status
    (128 + signal number when stopped by a signal)."""
    script, model = check_script_and_model(entry_script, model_dir, EndpointError)
    if not _port_is_free(port):
        raise EndpointError(f"port {port} is already in use; pick another with --port")
    argv = _server_command(script, model, port, host)
    base = f"http://{_client_host(host)}:{port}"
    print(f"Serving {script.name} with model {model} on {host}:{port}\n"
          f"  score:  POST {base}/score\n  health: GET  {base}/  (liveness and readiness)\n"
          "Ctrl-C (or SIGTERM) stops it.", flush=True)
    stopped_by: list[int] = []

    def on_signal(signum, frame):
        stopped_by.append(signum)
        raise KeyboardInterrupt

    handled = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    process = None
    try:
        process = subprocess.Popen(argv, cwd=script.parent, env=_server_env(script, model, env),
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        return process.wait()
    except KeyboardInterrupt:
        return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)
    finally:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in handled:  # a second signal must not cut the stop short
            signal.signal(sig, signal.SIG_IGN)
        try:
            if process is not None:
                stop(process, group=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def invoke(url: str, payload: Any, *, timeout: float = 60.0,
           headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """POST ``payload`` (dict/list -> JSON; str/bytes sent as is) and return ``(status, body)``.

    ``body`` is the parsed JSON when the response is JSON, else the text. HTTP error statuses (4xx/5xx)
    are returned, not raised; an unreachable server raises :class:`EndpointError`.
    """
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode("utf-8")
    else:
        data = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **dict(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise EndpointError(f"could not reach {url}: {getattr(exc, 'reason', exc)}") from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


# --------------------------------------------------------------------------------------------------
# Batch: Azure ML parallel-run semantics live in runner/batch.py (worker processes, retries, resume)

from distilbert_catalog.runner.batch import BatchRunError, run_batch  # noqa: E402
