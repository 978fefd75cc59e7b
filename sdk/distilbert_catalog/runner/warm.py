"""Warm starts for a local pipeline's steps: the libraries a step imports are imported once per
pipeline run, and each step is forked from the interpreter that holds them.

A catalog step is ``python run.py ...``, and most of its start-up is importing torch,
transformers, MLflow and datasets (6-8 s of CPU per step on the machines this project runs on);
a local pipeline runs four or five such steps in a row. Azure ML starts each step in its own
container; locally, :class:`WarmStarter` starts one *warm* interpreter per pipeline run (``python
-m distilbert_catalog.runner.warm``). For each step it imports the modules the step's script
imports at its top level, every module the earlier steps imported and the modules the same script
imported when it last ran (remembered in the catalog's cache folder), then forks a child that
runs the script exactly as ``python script args...`` would: its own ``argv``, working folder,
``sys.path[0]``, ``__main__``, stdin from ``/dev/null``, stdout and stderr on the pipe the runner
reads, ``atexit`` handlers and exit status (negative for a signal, as :class:`subprocess.Popen`
reports it).

A step is forked only where that is the same as a fresh interpreter: the command is
``sys.executable`` running a script or ``-m module``; the step's environment is the one the warm
interpreter started with (libraries read some variables when imported: the OpenMP thread count,
Hugging Face's offline switches); no module of the step's own folder has the name of one already
imported; no Python thread runs in the warm interpreter. Any other step, or every step once the
warm interpreter failed, runs as a fresh process. ``DISTILBERT_CATALOG_FRESH_STEPS=1`` turns warm
starts off.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import contextlib
import importlib
import importlib.machinery
import json
import os
import random
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path

from distilbert_catalog import process_exit
from distilbert_catalog.defaults import cache_root

#: set to 1 to run every step in a fresh interpreter
OFF_SWITCH = "DISTILBERT_CATALOG_FRESH_STEPS"
READY_TIMEOUT_S = 60.0
#: in the catalog's cache folder: the modules each step script imported when it last ran
CACHE_FILE = "warm-starts.json"


class WarmStarter:
    """Forks pipeline steps from one warm interpreter; :meth:`start` returns None for a step that
    must run fresh. Use as a context manager: the warm interpreter ends with the block."""

    def __init__(self) -> None:
        self._server: subprocess.Popen | None = None
        self._socket: socket.socket | None = None
        self._lines: _Lines | None = None
        self._child: WarmChild | None = None
        self._env: dict[str, str] | None = None
        self._broken = os.environ.get(OFF_SWITCH, "").strip().lower() in ("1", "true", "yes", "on")

    def __enter__(self) -> WarmStarter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def eligible(self, argv: list[str], env: dict[str, str]) -> bool:
        if self._broken or os.name != "posix" or len(argv) < 2 or argv[0] != sys.executable:
            return False
        if argv[1] == "-m":
            return len(argv) > 2
        if argv[1].startswith("-") or not argv[1].endswith(".py"):
            return False
        return self._env is None or env == self._env

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> WarmChild | None:
        """Fork ``argv`` from the warm interpreter (started on first use with ``env``); None when
        the step must run in a fresh process instead."""
        if not self.eligible(argv, env) or not self._ready(env):
            return None
        if self._child is not None:
            self._child.wait()  # the warm interpreter runs one step at a time
        read_end, write_end = os.pipe()
        try:
            request = json.dumps({"argv": argv, "cwd": str(cwd)}).encode() + b"\n"
            socket.send_fds(self._socket, [request], [write_end])
            reply = self._lines.receive()
        except OSError:
            reply = None
        finally:
            os.close(write_end)
        if not reply or "pid" not in reply:
            os.close(read_end)
            if not (reply and reply.get("fresh")):
                self._give_up()
            return None
        self._child = WarmChild(reply["pid"], read_end, self._lines)
        return self._child

    def _ready(self, env: dict[str, str]) -> bool:
        if self._server is not None:
            return self._server.poll() is None
        ours, theirs = socket.socketpair()
        self._env = dict(env)
        try:
            self._server = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())], env=env,
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self._broken = True
            return False
        finally:
            theirs.close()
        self._socket, self._lines = ours, _Lines(ours)
        try:
            ready = self._lines.receive(READY_TIMEOUT_S)
        except OSError:  # TimeoutError included
            ready = None
        if not ready or not ready.get("ready"):
            self._give_up()
            return False
        return True

    def _give_up(self) -> None:
        self._broken = True
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()  # the warm interpreter ends on end of file
            self._socket = None
        if self._server is not None:
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            self._server = None


class WarmChild:
    """A forked step: its output pipe (``stdout``, a binary file object), ``pid``, and ``wait`` /
    ``terminate`` / ``kill`` as on :class:`subprocess.Popen`."""

    def __init__(self, pid: int, read_end: int, channel: _Lines) -> None:
        self.pid = pid
        self.stdout = os.fdopen(read_end, "rb", buffering=0)
        self.returncode: int | None = None
        self._channel = channel

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                reply = self._channel.receive(timeout)
            except TimeoutError:
                raise subprocess.TimeoutExpired(f"warm step {self.pid}", timeout) from None
            if reply is None:  # the warm interpreter was killed: its orphan must not run on
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            self.returncode = reply["returncode"] if reply else -signal.SIGKILL
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


class _Lines:
    """JSON lines from a socket, one at a time: a timeout leaves what was read for the next call
    (``socket.makefile`` becomes unusable after one)."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.pending = b""

    def receive(self, timeout: float | None = None) -> dict | None:
        """The next line (None at end of file); ``TimeoutError`` after ``timeout`` seconds."""
        self.channel.settimeout(timeout)
        try:
            while b"\n" not in self.pending:
                chunk = self.channel.recv(4096)
                if not chunk:
                    return None
                self.pending += chunk
        finally:
            self.channel.settimeout(None)
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)


# --- the warm interpreter ---------------------------------------------------------------------

def _serve(fd: int) -> None:
    sys.path.pop(0)  # `-m` put the runner's working folder first: each child puts its own there
    channel = socket.socket(fileno=fd)
    channel.sendall(json.dumps({"ready": True}).encode() + b"\n")
    learned: set[str] = set()
    remembered = _Remembered(cache_root() / CACHE_FILE)
    # not TemporaryDirectory: its clean-up is an atexit finaliser, which each child runs
    scratch = tempfile.mkdtemp(prefix="warm-")
    try:
        report = os.path.join(scratch, "modules.json")
        while True:
            message, fds = _receive_with_fd(channel)
            if message is None:
                return
            request = json.loads(message)
            argv, cwd = request["argv"], request["cwd"]
            folder = _script_folder(argv, cwd)
            own = _own_modules(folder)
            script = _script_key(argv, folder)
            _preload(learned | remembered.get(script) | _top_level_imports(argv, cwd), own)
            if own & set(sys.modules) or threading.active_count() != 1:
                # a module of the step's own folder would lose to a preloaded one of that name;
                # a fork copies only the calling thread, so no Python thread may run here (the
                # idle native threads torch and pyarrow start on import are fork-safe: PyTorch's
                # DataLoader forks its workers from such processes, and no kernel ran here)
                os.close(fds[0])
                channel.sendall(json.dumps({"fresh": True}).encode() + b"\n")
                continue
            pid = os.fork()
            if pid == 0:
                channel.close()
                _run_child(argv, cwd, fds[0], folder, report)
            os.close(fds[0])
            channel.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            _, status = os.waitpid(pid, 0)
            channel.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode()
                            + b"\n")
            with contextlib.suppress(OSError, ValueError):
                with open(report) as modules:
                    imported = json.load(modules)
                os.remove(report)
                learned.update(imported)
                remembered.put(script, imported)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Remembered:
    """What each step script imported when it last ran (``{script: [module, ...]}`` in the
    catalog's cache), so the next pipeline run imports it before that step's first fork. A hint
    only: a module that no longer imports is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.scripts = json.loads(path.read_text())
            assert isinstance(self.scripts, dict)
        except (OSError, ValueError, AssertionError):
            self.scripts = {}

    def get(self, script: str) -> set[str]:
        names = self.scripts.get(script)
        return set(names) if isinstance(names, list) else set()

    def put(self, script: str, names: list[str]) -> None:
        if set(names) == self.get(script):
            return
        self.scripts[script] = sorted(names)
        # forget the scripts and interpreters that are gone (a test's temporary components): the
        # file holds what exists, not every script that ever ran
        self.scripts = {key: value for key, value in self.scripts.items() if _exists(key)}
        with contextlib.suppress(OSError):  # written whole, then renamed: readers see one or the other
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".warm-")
            with os.fdopen(fd, "w") as out:
                json.dump(self.scripts, out)
            os.replace(temporary, self.path)


def _script_key(argv: list[str], folder: str) -> str:
    """One key per interpreter and step script (or ``-m`` module), tab-separated."""
    target = f"-m {argv[2]}" if argv[1] == "-m" else os.path.join(folder, os.path.basename(argv[1]))
    return f"{sys.executable}\t{target}"


def _exists(key: str) -> bool:
    interpreter, tab, target = key.partition("\t")
    return bool(tab) and os.path.exists(interpreter) and (
        target.startswith("-m ") or os.path.exists(target))


def _script_folder(argv: list[str], cwd: str) -> str:
    if argv[1] == "-m":
        return os.path.realpath(cwd)
    return os.path.dirname(os.path.realpath(os.path.join(cwd, argv[1])))


def _top_level_imports(argv: list[str], cwd: str) -> set[str]:
    """The modules a step's script imports at its top level (read, not run)."""
    if argv[1] == "-m":
        return {argv[2]}
    try:
        tree = ast.parse(Path(cwd, argv[1]).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _own_modules(folder: str) -> set[str]:
    """The top-level module names a script's folder defines (they come first on its sys.path)."""
    names = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.endswith(".py"):
                names.add(entry.name[:-3])
            elif entry.is_dir() and os.path.exists(os.path.join(entry.path, "__init__.py")):
                names.add(entry.name)
    return names


def _preload(names: set[str], own: set[str]) -> None:
    """Import ``names`` here, once, except the script folder's ``own`` modules."""
    for name in sorted(names - set(sys.modules)):
        if name.partition(".")[0] in own:
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _receive_with_fd(channel: socket.socket) -> tuple[bytes | None, list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, received, _flags, _address = socket.recv_fds(channel, 65536, 1)
        fds.extend(received)
        if not chunk:
            return None, fds
        data += chunk
    return data, fds


def _run_child(argv: list[str], cwd: str, output_fd: int, folder: str, report: str) -> None:
    """In the forked child: become ``python argv[1:]``, then write to ``report`` the modules it
    imported from outside ``folder`` (the warm interpreter imports them for the next steps), and
    never return."""
    code, interrupted = 1, False
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(devnull)
        os.close(output_fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(cwd)
        random.seed()  # as a fresh interpreter would, not the warm one's state
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        if argv[1] == "-m":
            sys.argv = [argv[2], *argv[3:]]
            sys.path.insert(0, cwd)
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        else:  # as the interpreter: __file__ made absolute, sys.path[0] its real folder
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, folder)
            _run_as_main(os.path.abspath(argv[1]))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 - reported as a fresh interpreter would: status 1
        import traceback

        frames = exc.__traceback__
        while frames is not None and frames.tb_frame.f_code.co_filename == __file__:
            frames = frames.tb_next  # the script's frames only, not this launcher's
        traceback.print_exception(type(exc), exc, frames)
        interrupted = isinstance(exc, KeyboardInterrupt)
    finally:
        # the exit handlers, as the interpreter runs them, except the final collection's (this
        # child ends at once: there are no final collections to spare)
        atexit.unregister(process_exit.collect_then_freeze)
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        with contextlib.suppress(BaseException):
            _report_modules(folder, report)
        if interrupted:  # ends by SIGINT, as the interpreter does on an uncaught Ctrl-C
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def _run_as_main(script: str) -> None:
    """Run ``script`` as ``__main__``, as ``python script`` does (``runpy.run_path`` would
    change ``sys.argv[0]``)."""
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    sys.modules["__main__"] = main
    with open(script, "rb") as source:
        code = compile(source.read(), script, "exec")
    exec(code, main.__dict__)  # noqa: S102 - the step's own script, as the interpreter would run it


def _report_modules(folder: str, report: str) -> None:
    inside = folder.rstrip(os.sep) + os.sep
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name in ("__main__", "__mp_main__") or not isinstance(path, str):
            continue
        if not os.path.realpath(path).startswith(inside):
            names.append(name)
    with open(report, "w") as out:
        json.dump(names, out)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
    # it only imported and forked: nothing of its own to finalise, and a normal exit would walk
    # every object the libraries made (process_exit.py); the steps ran in the children
    sys.stdout.flush()
    os._exit(0)
