"""A catalog process's exit hook (distilbert_catalog.process_exit), in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

#: a cycle that is garbage at exit and whose finaliser writes a file: the interpreter finalises it
GARBAGE_AT_EXIT = """
import sys
import distilbert_catalog

class Node:
    def __del__(self):
        with open(sys.argv[1], "w") as out:
            out.write("finalised")

node = Node()
node.self = node
del node
"""

FROZEN_AFTER_EXIT_HANDLERS = """
import atexit, gc
import distilbert_catalog
atexit._run_exitfuncs()
print(gc.get_freeze_count())
"""


def _python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True, timeout=60, env={**os.environ, **(env or {})})


def test_garbage_at_exit_is_still_finalised(tmp_path):
    marker = tmp_path / "marker"
    _python(GARBAGE_AT_EXIT, str(marker))
    assert marker.read_text() == "finalised"


def test_the_survivors_are_frozen_after_the_exit_handlers():
    assert int(_python(FROZEN_AFTER_EXIT_HANDLERS).stdout) > 1000


def test_the_off_switch_keeps_the_interpreters_own_exit():
    done = _python(FROZEN_AFTER_EXIT_HANDLERS, env={"DISTILBERT_CATALOG_FULL_EXIT_GC": "1"})
    assert int(done.stdout) == 0
