"""The CPU-sensitive tests, rerun as if on each kind of CPU the project runs on.

The project has run on an AVX2-only AMD EPYC, an AVX-512 Intel Xeon with VNNI and AVX512-BF16,
and may meet AMX; what the catalog decides (which backends can run, which precision ``auto``
trains in, which gate records it trusts) must hold on each. ``DISTILBERT_CATALOG_CPU_FLAGS``
makes the catalog read a simulated flag set (:data:`distilbert_catalog.hardware.SIMULATED_KINDS`)
instead of this machine's; each kind runs the ``cpu_sensitive`` tests in a fresh pytest process,
so the session fixtures are rebuilt under that kind too. (Kernels still run on the real CPU: the
simulation checks the catalog's choices, not ONNX Runtime's or PyTorch's own dispatch.)
"""

from __future__ import annotations

import os
import re
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


@pytest.mark.parametrize("kind", sorted(SIMULATED_KINDS))
def test_cpu_sensitive_tests_pass_on_every_cpu_kind(kind):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "-m", "cpu_sensitive", "-W", "ignore", *SENSITIVE_FILES],
        cwd=REPO, env={**os.environ, FLAGS_ENV: kind}, capture_output=True, text=True,
        timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(rf"\b{EXPECTED} passed, \d+ deselected", done.stdout), done.stdout[-2000:]


def test_simulated_kinds_name_the_features_they_stand_for():
    assert {kind: isa_features(flags) for kind, flags in SIMULATED_KINDS.items()} == {
        "avx2": ["avx2"], "avx512": ["avx2", "avx512"],
        "avx512-vnni-bf16": ["avx2", "avx512", "vnni", "avx512_bf16"],
        "amx": ["avx2", "avx512", "vnni", "avx512_bf16", "amx"]}
