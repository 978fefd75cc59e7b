"""Run a command as Azure ML runs a ``distribution: {type: pytorch}`` job, on this machine.

Azure ML starts ``process_count_per_instance`` processes on each of ``resources.instance_count``
nodes and sets, for each, ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``,
``RANK`` and ``LOCAL_RANK``. Locally the nodes are simulated: one PyTorch launcher
(``python -m torch.distributed.run``, i.e. ``torchrun``) per node, all on loopback with a static
rendezvous on ``127.0.0.1`` and a free port, each started with ``--nnodes M --node-rank i``
and ``NODE_RANK=i`` in its environment (torchrun sets the other five). PyTorch's launcher, not
ours, starts the ranks and tears the group down when one fails; this module picks the port,
starts and watches the node launchers, stops the others when one fails, and says which rank
failed and how.

One process on one node runs the command as it is, without a launcher (no process group).
"""

from __future__ import annotations

import codecs
import contextlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TextIO

from distilbert_catalog.errors import CatalogError
from distilbert_catalog.runner.process import stop

MASTER_ADDR = "127.0.0.1"
#: seconds the other node launchers get to end on their own once one has failed, before SIGTERM
GRACE_S = 5.0
#: rendezvous ports tried before giving up (a port taken between choosing and binding it)
PORT_ATTEMPTS = 3
_PORT_TAKEN = re.compile(r"EADDRINUSE|address already in use", re.IGNORECASE)
# torchrun's failure summary: "rank: 1 (local_rank: 1)", "exitcode: -9 (pid: 123)",
# "traceback: Signal 9 (SIGKILL) received by PID 123" or "... To enable traceback see ..."
_ROOT_CAUSE = re.compile(r"Root Cause \(first observed failure\):(.*?)(?:\n=+|\Z)", re.DOTALL)
_FIELD = re.compile(r"^\s*(rank|exitcode|traceback|host)\s*:\s*(.*)$", re.MULTILINE)


class DistributionError(CatalogError, ValueError):
    """A distribution or resources setting the local runner cannot use; the message says why."""


@dataclass(frozen=True)
class Distribution:
    """How many processes run a command: ``process_count_per_instance`` on each of
    ``instance_count`` nodes (Azure ML's ``distribution`` and ``resources``)."""

    process_count_per_instance: int = 1
    instance_count: int = 1

    @property
    def world_size(self) -> int:
        return self.process_count_per_instance * self.instance_count

    @classmethod
    def of(cls, spec: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
           what: str = "component") -> "Distribution":
        """The component's ``distribution``/``resources`` with ``overrides`` (a job's or pipeline
        step's values, CLI flags, SDK keywords: ``process_count_per_instance``,
        ``instance_count``; None keeps the component's)."""
        declared = spec.get("distribution") or {}
        resources = spec.get("resources") or {}
        if not isinstance(declared, Mapping) or not isinstance(resources, Mapping):
            raise DistributionError(f"{what}: 'distribution' and 'resources' must be mappings")
        values = {"process_count_per_instance": declared.get("process_count_per_instance", 1),
                  "instance_count": resources.get("instance_count", 1)}
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        for name, value in values.items():
            values[name] = _count(what, name, value)
        result = cls(**values)
        kind = str(declared.get("type", "")).lower()
        if result.world_size > 1 and kind != "pytorch":
            found = f"distribution type '{declared['type']}'" if declared else "no distribution"
            raise DistributionError(
                f"{what} declares {found}; only 'distribution: {{type: pytorch}}' components run "
                f"on several processes locally (asked for {result.process_count_per_instance} "
                f"per instance x {result.instance_count} instances)")
        return result


def _count(what: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or \
            not str(value).strip().isdigit() or int(value) < 1:
        raise DistributionError(f"{what}: {name} must be a whole number of at least 1; "
                                f"got {value!r}")
    return int(value)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens on it on loopback, else a port the system hands out."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((MASTER_ADDR, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise DistributionError("no free TCP port on 127.0.0.1 for the rendezvous")


def launcher_argv(argv: list[str], distribution: Distribution, node_rank: int,
                  port: int) -> list[str]:
    """``python -m torch.distributed.run`` for one node, running ``argv`` on each of its ranks."""
    launcher = [sys.executable, "-m", "torch.distributed.run",
                "--nnodes", str(distribution.instance_count), "--node-rank", str(node_rank),
                "--nproc-per-node", str(distribution.process_count_per_instance),
                "--rdzv-backend", "static", "--master-addr", MASTER_ADDR,
                "--master-port", str(port), "--max-restarts", "0",
                "--tee", "3"]  # each rank's lines prefixed "[default<local rank>]:"
    if Path(argv[0]).name.startswith("python") and len(argv) > 1:
        if argv[1] == "-m":
            return launcher + ["--module", *argv[2:]]
        return launcher + argv[1:]
    return launcher + ["--no-python", *argv]


@dataclass
class _Node:
    rank: int
    process: subprocess.Popen
    tail: deque
    reader: threading.Thread


def run_distributed(argv: list[str], distribution: Distribution, *, cwd: Path, env: dict,
                    stream: TextIO, name: str = "component",
                    preferred_port: int | None = None) -> tuple[int, str]:
    """Run ``argv`` on ``distribution.world_size`` processes; ``(exit code, message)``.

    The exit code is 0 when every rank succeeded. Otherwise the message names the failed rank,
    its exit code or signal and its last output; the other nodes are stopped within
    :data:`GRACE_S` seconds (and torchrun stops the failed node's other ranks at once), so no
    rank is left waiting on a collective. A rendezvous port found taken is replaced by another.
    """
    port = free_port(preferred_port)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        code, tails = _run_nodes(argv, distribution, port, cwd=cwd, env=env, stream=stream)
        if code == 0:
            return 0, ""
        joined = "\n".join(line for _, tail in tails for line in tail)
        if attempt < PORT_ATTEMPTS and _PORT_TAKEN.search(joined):
            taken, port = port, free_port()
            stream.write(f"[runner] rendezvous port {taken} is taken; retrying on {port}\n")
            continue
        return code, failure_message(name, distribution, tails, code)
    raise AssertionError("unreachable")


def _run_nodes(argv, distribution, port, *, cwd, env, stream
               ) -> tuple[int, list[tuple[int, deque]]]:
    lock = threading.Lock()
    nodes: list[_Node] = []
    try:
        for rank in range(distribution.instance_count):
            node_env = {**env, "NODE_RANK": str(rank)}
            try:
                process = subprocess.Popen(
                    launcher_argv(argv, distribution, rank, port), cwd=cwd, env=node_env,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as exc:
                raise DistributionError(f"cannot start the PyTorch launcher: {exc}") from exc
            tail: deque = deque(maxlen=60)
            prefix = f"[node {rank}] " if distribution.instance_count > 1 else ""
            reader = threading.Thread(target=_copy, args=(process, tail, stream, lock, prefix),
                                      daemon=True)
            reader.start()
            nodes.append(_Node(rank, process, tail, reader))
        failed_at, first = None, None
        while True:
            codes = [node.process.poll() for node in nodes]
            if first is None:
                first = next((i for i, c in enumerate(codes) if c not in (None, 0)), None)
            if all(code is not None for code in codes):
                break
            if failed_at is None and first is not None:
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > GRACE_S:
                for node in nodes:  # torchrun's agent stops its own ranks on SIGTERM
                    stop(node.process, timeout=15)
            time.sleep(0.1)
    except BaseException:  # e.g. KeyboardInterrupt: leave no launcher or rank behind
        for node in nodes:
            stop(node.process, timeout=15)
        raise
    finally:
        for node in nodes:
            node.reader.join(timeout=10)
    tails = [(node.rank, node.tail) for node in nodes]
    if first is None:
        return 0, tails
    # the node that failed first holds the root cause; the others were stopped after it
    return nodes[first].process.returncode, [tails[first]] + tails[:first] + tails[first + 1:]


def _copy(process: subprocess.Popen, tail: deque, stream: TextIO, lock: threading.Lock,
          prefix: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    with contextlib.closing(process.stdout):
        for chunk in iter(lambda: process.stdout.read1(65536), b""):
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            if lines:
                tail.extend(lines)
                with lock:
                    stream.write("".join(f"{prefix}{line}\n" for line in lines))
                    stream.flush()
    pending += decoder.decode(b"", final=True)
    if pending:
        tail.append(pending)
        with lock:
            stream.write(f"{prefix}{pending}\n")


def failure_message(name: str, distribution: Distribution, tails: list[tuple[int, deque]],
                    code: int) -> str:
    """Which rank failed and how, from torchrun's failure summaries (else the exit code), with
    that rank's last error line. ``tails``: (node rank, last output lines), the node that failed
    first first. A rank killed by a signal other than SIGTERM (which launchers send to stop the
    rest) is named before one that failed after it, e.g. on a connection its peer closed."""
    where = (f"{distribution.world_size} processes ({distribution.process_count_per_instance} "
             f"per instance x {distribution.instance_count} instances)")
    causes = []
    for node, tail in tails:
        text = "\n".join(tail)
        found = _ROOT_CAUSE.search(text)
        fields = dict(_FIELD.findall(found.group(1))) if found else {}
        rank = re.match(r"\s*(\d+)\s*\(local_rank:\s*(\d+)\)", fields.get("rank", ""))
        if rank:
            exitcode = re.match(r"\s*(-?\d+)", fields.get("exitcode", ""))
            killed = bool(exitcode) and int(exitcode.group(1)) < 0 and \
                int(exitcode.group(1)) != -signal.SIGTERM
            causes.append((not killed, len(causes), node, rank, fields, text))
    if not causes:
        return (f"component '{name}' failed on {where}: a node launcher exited with code "
                f"{code} before any rank reported")
    _, _, node, rank, fields, text = min(causes, key=lambda cause: cause[:2])
    how = _exit_text(fields.get("exitcode", ""))
    error = _last_error(text, int(rank.group(2)))
    return (f"component '{name}' failed on {where}: rank {rank.group(1)} (node {node}, "
            f"local rank {rank.group(2)}) {how}" + (f": {error}" if error else "")
            + "; the other ranks were stopped")


def _exit_text(exitcode: str) -> str:
    match = re.match(r"\s*(-?\d+)", exitcode)
    if not match:
        return "failed"
    value = int(match.group(1))
    if value < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {-value} ({signal.Signals(-value).name})"
        return f"was killed by signal {-value}"
    return f"exited with code {value}"


def _last_error(text: str, local_rank: int) -> str | None:
    """The failed rank's last error line: an exception (``SomeError: message``), the
    component's ``error: ...``, else its last line."""
    prefix = f"[default{local_rank}]:"
    lines = [line.split(prefix, 1)[1].strip() for line in text.splitlines() if prefix in line]
    lines = [line for line in lines if line]
    errors = [line for line in lines
              if re.match(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt)\b|error:)", line)]
    return (errors or lines or [None])[-1]
