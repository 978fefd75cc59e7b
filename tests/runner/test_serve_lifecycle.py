"""`distilbert-catalog serve` as users run it: a fresh process, loopback by default, stopped by
SIGTERM or SIGINT with no process and no bound port left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "distilbert-catalog"
#: how long a stop may take before the test calls it hung: it waits on the event (process gone,
#: port free) and returns as soon as it happens; the bound only has to hold on a loaded machine
#: (the CLI gives its server 10 s before SIGKILL, and a busy 2-core CI can add tens of seconds)
STOP_BOUND = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def _non_loopback_address() -> str | None:
    """An address of this machine other than 127.x (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent (UDP connect)
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _server_group(cli_pid: int, port: int) -> int:
    """The process group of the azmlinfsrv the CLI started (its child, in a session of its own)."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,ppid=,pgid=,args=", "-e"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        pid, ppid, pgid, args = line.split(None, 3)
        if int(ppid) == cli_pid and f"--port {port}" in args:
            return int(pgid)
    raise AssertionError(f"no server process under the CLI (pid {cli_pid}):\n{out}")


def _start(model: Path, port: int, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen([str(CLI), "serve", str(model), "--port", str(port), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                if response.status == 200:  # readiness: init() (model load) has finished
                    return process
        except OSError:
            time.sleep(0.3)
    _stop(process)
    raise AssertionError("the server did not become ready: " + process.stdout.read())


def _stop(cli: subprocess.Popen) -> None:
    """SIGTERM (the CLI then stops its server), SIGKILL only if that fails."""
    if cli.poll() is None:
        cli.send_signal(signal.SIGTERM)
        try:
            cli.wait(timeout=STOP_BOUND)
        except subprocess.TimeoutExpired:
            cli.kill()
            cli.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_binds_loopback_and_stops_its_whole_process_tree_freeing_the_port(tiny_model, sig):
    port = _free_port()
    cli = _start(tiny_model, port)
    try:
        group = _server_group(cli.pid, port)
        other = _non_loopback_address()  # loopback by default: not reachable from the network
        assert other is None or not _listening(other, port), f"reachable on {other}:{port}"
        body = b'{"inputs": {"input_string": ["Paris is the [MASK] of France."]}}'
        request = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        cli.send_signal(sig)
        cli.wait(timeout=STOP_BOUND)
    finally:
        _stop(cli)
    assert cli.returncode == 128 + sig
    deadline = time.monotonic() + STOP_BOUND
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(group), "azmlinfsrv master or workers left running"
    assert not _listening("127.0.0.1", port)
    with socket.socket() as sock:  # a new server can bind the port right away (as servers do,
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT)
        sock.bind(("127.0.0.1", port))
        sock.listen()

