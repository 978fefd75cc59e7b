"""Warm starts: a step forked from the warm interpreter behaves as ``python script args`` would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distilbert_catalog.runner import warm as warm_module
from distilbert_catalog.runner.process import stop
from distilbert_catalog.runner.warm import WarmStarter

#: prints what a script can see of how it was started; ends as its first argument says
FACTS = textwrap.dedent("""\
    import atexit, json, os, random, sys
    atexit.register(lambda: print("atexit ran", flush=True))
    print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0],
                      "name": __name__, "file": __file__, "stdin": sys.stdin.read(),
                      "env": os.environ.get("WARM_TEST_VALUE"), "helper": __import__("helper").X,
                      "random": random.random(), "ppid": os.getppid()}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    how = sys.argv[1]
    if how == "raise":
        raise ValueError("the step broke")
    if how == "interrupt":
        raise KeyboardInterrupt
    if how == "message":
        sys.exit("a message for the user")
    if how == "sleep":
        import time
        print("sleeping", flush=True)
        time.sleep(60)
    sys.exit(int(how))
    """)


@pytest.fixture
def step(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILBERT_CATALOG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(warm_module.OFF_SWITCH, raising=False)
    code = tmp_path / "code"
    code.mkdir()
    (code / "facts.py").write_text(FACTS)
    (code / "helper.py").write_text("X = 'from the step folder'\n")
    return code


def _env(**extra) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "WARM_TEST_VALUE": "seen", **extra}


def _fresh(argv, cwd) -> tuple[int, str]:
    done = subprocess.run(argv, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return done.returncode, done.stdout


def _forked(warm: WarmStarter, argv, cwd) -> tuple[int, str]:
    child = warm.start(argv, cwd=cwd, env=_env())
    assert child is not None, "the step should have been forked"
    output = child.stdout.read().decode()
    child.stdout.close()
    return child.wait(), output


def _facts(output: str) -> dict:
    facts = json.loads(output.splitlines()[0])
    facts.pop("random"), facts.pop("ppid")
    return facts


@pytest.mark.parametrize("how, returncode", [("0", 0), ("3", 3), ("raise", 1), ("message", 1),
                                             ("interrupt", -signal.SIGINT)])
def test_a_forked_step_sees_and_ends_as_a_fresh_interpreter_would(step, how, returncode):
    argv = [sys.executable, "facts.py", how, "--flag", "x y"]
    with WarmStarter() as warm:
        forked = _forked(warm, argv, step)
    fresh = _fresh(argv, step)
    assert forked[0] == fresh[0] == returncode
    assert _facts(forked[1]) == _facts(fresh[1]) == {
        "argv": ["facts.py", how, "--flag", "x y"], "cwd": str(step), "path0": str(step),
        "name": "__main__", "file": str(step / "facts.py"), "stdin": "", "env": "seen",
        "helper": "from the step folder"}
    # the same lines in the same order: stderr interleaved, atexit handlers run, tracebacks shown
    assert forked[1].splitlines()[1:] == fresh[1].splitlines()[1:]
    assert "atexit ran" in forked[1]
    if how == "raise":
        assert "ValueError: the step broke" in forked[1]


def test_steps_fork_from_one_warm_interpreter_with_their_own_random_state(step):
    argv = [sys.executable, "facts.py", "0"]
    seen = []
    cache = step.parent / "cache"
    cache.mkdir()
    (cache / warm_module.CACHE_FILE).write_text(json.dumps(
        {f"{sys.executable}\t{step / 'gone.py'}": ["json"]}))
    with WarmStarter() as warm:
        for _ in range(2):
            returncode, output = _forked(warm, argv, step)
            assert returncode == 0
            seen.append(json.loads(output.splitlines()[0]))
        server = warm._server.pid
    assert [facts["ppid"] for facts in seen] == [server, server] and server != os.getpid()
    assert seen[0]["random"] != seen[1]["random"]
    # what the step imported is remembered for the next run, keyed by interpreter and script
    remembered = json.loads((step.parent / "cache" / warm_module.CACHE_FILE).read_text())
    assert set(remembered) == {f"{sys.executable}\t{step / 'facts.py'}"}  # the stale key dropped
    names = set(next(iter(remembered.values())))
    assert {"json", "random"} <= names and "helper" not in names


def test_a_killed_step_reports_the_signal_and_stop_ends_it(step):
    argv = [sys.executable, "facts.py", "sleep"]
    with WarmStarter() as warm:
        child = warm.start(argv, cwd=step, env=_env())
        assert child.stdout.read(9) == b"{\"argv\": "
        stop(child, timeout=10)
        assert child.returncode == -signal.SIGTERM
        child.stdout.close()
        killed = warm.start(argv, cwd=step, env=_env())
        killed.kill()
        assert killed.wait(timeout=30) == -signal.SIGKILL
        killed.stdout.close()


def test_steps_that_could_differ_from_a_fresh_interpreter_run_fresh(step, monkeypatch):
    argv = [sys.executable, "facts.py", "0"]
    with WarmStarter() as warm:
        assert warm.start(argv, cwd=step, env=_env()) is not None
        # another environment: libraries read some variables when imported
        assert warm.start(argv, cwd=step, env=_env(WARM_TEST_VALUE="other")) is None
        assert warm.start(["/bin/echo", "x"], cwd=step, env=_env()) is None
        assert warm.start([sys.executable, "-c", "print(1)"], cwd=step, env=_env()) is None
        # a module of the step's folder named like one the warm interpreter holds
        (step / "json.py").write_text("X = 1\n")
        assert warm.start(argv, cwd=step, env=_env()) is None
    monkeypatch.setenv(warm_module.OFF_SWITCH, "1")
    with WarmStarter() as warm:
        assert warm.start(argv, cwd=step, env=_env()) is None
