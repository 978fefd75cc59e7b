"""The CPU-sensitive tests, rerun as if on each kind of CPU the project runs on.

The project has run on an AVX2-only AMD EPYC, an AVX-512 Intel Xeon with VNNI and AVX512-BF16,
and may meet AMX; what the catalog decides (which backends can run, which precision ``auto``
trains in, which gate records it trusts) must hold on each. ``DISTILBERT_CATALOG_CPU_FLAGS``
makes the catalog read a simulated flag set (:data:`distilbert_catalog.hardware.SIMULATED_KINDS`)
instead of this machine's. One child process (not this session: its fixtures were built under
the real CPU) runs the ``cpu_sensitive`` tests once per kind, each run a whole pytest session
with that kind set, so the session fixtures are rebuilt under each kind too (the catalog reads
the variable when it decides, never at import). (Kernels still run on the real CPU: the
simulation checks the catalog's choices, not ONNX Runtime's or PyTorch's own dispatch.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from distilbert_catalog.hardware import FLAGS_ENV, SIMULATED_KINDS, isa_features
from tests.support import REPO

#: the tests marked cpu_sensitive (see pyproject.toml), all of which must run under every kind
EXPECTED = 10

#: the files that mark tests cpu_sensitive: the child collects only those
SENSITIVE_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                         if "mark.cpu_sensitive" in p.read_text() and p.name != "test_cpu_kinds.py")

#: the child: per kind (argv), a pytest session over the cpu_sensitive tests with the flags set;
#: prints one JSON line per kind: its exit code and the outcome of each test
CHILD = """
import json, os, sys
import pytest

class Outcomes:  # per test: "passed", "skipped", or where it failed and why
    def __init__(self):
        self.seen = {}
    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.seen[report.nodeid] = f"failed in {report.when}: {report.longreprtext[-3000:]}"
        elif report.skipped or (report.when == "call" and report.nodeid not in self.seen):
            self.seen[report.nodeid] = report.outcome

kinds, files = sys.argv[1].split(","), sys.argv[2:]
for kind in kinds:
    os.environ[FLAGS_ENV] = kind
    outcomes = Outcomes()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-n", "0", "-m", "cpu_sensitive",
                        "-W", "ignore", *files], plugins=[outcomes])
    print("KIND " + json.dumps({"kind": kind, "exit": int(code), "tests": outcomes.seen}),
          flush=True)
"""


@pytest.fixture(scope="module")
def runs_by_kind() -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-c", f"FLAGS_ENV = {FLAGS_ENV!r}\n{CHILD}",
         ",".join(sorted(SIMULATED_KINDS)), *SENSITIVE_FILES],
        cwd=REPO, env={k: v for k, v in os.environ.items() if k != FLAGS_ENV},
        capture_output=True, text=True, timeout=900)
    runs = {}
    for line in done.stdout.splitlines():
        if line.startswith("KIND "):
            run = json.loads(line[5:])
            runs[run["kind"]] = run
    assert done.returncode == 0 and runs.keys() == SIMULATED_KINDS.keys(), \
        done.stdout[-4000:] + done.stderr[-2000:]
    return {kind: {**run, "output": done.stdout} for kind, run in runs.items()}


@pytest.mark.parametrize("kind", sorted(SIMULATED_KINDS))
def test_cpu_sensitive_tests_pass_on_every_cpu_kind(kind, runs_by_kind):
    run = runs_by_kind[kind]
    failed = {k: v for k, v in run["tests"].items() if v != "passed"}
    assert failed == {} and run["exit"] == 0, (failed, run["output"][-3000:])
    assert len(run["tests"]) == EXPECTED, sorted(run["tests"])


def test_simulated_kinds_name_the_features_they_stand_for():
    assert {kind: isa_features(flags) for kind, flags in SIMULATED_KINDS.items()} == {
        "avx2": ["avx2"], "avx512": ["avx2", "avx512"],
        "avx512-vnni-bf16": ["avx2", "avx512", "vnni", "avx512_bf16"],
        "amx": ["avx2", "avx512", "vnni", "avx512_bf16", "amx"]}
