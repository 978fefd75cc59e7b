"""No module of the package may shadow a top-level library.

A scoring script's folder goes on ``sys.path`` (Azure ML, azmlinfsrv and the local batch runner all
do this), so a module there named like a library (``serving/requests.py`` once shadowed
``requests``, which mlflow imports) breaks imports only in a fresh process. The names are checked
against what a fresh, isolated interpreter of this environment can import at top level: installed
distributions' top-level names, the standard library, and every top-level module on its path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import distilbert_catalog

PACKAGE = Path(distilbert_catalog.__file__).resolve().parent

LIST_TOP_LEVEL = """
import json, pkgutil, sys
from importlib.metadata import packages_distributions
names = set(packages_distributions()) | set(sys.stdlib_module_names) | set(sys.builtin_module_names)
names |= {m.name for m in pkgutil.iter_modules()}
print(json.dumps(sorted(names)))
"""

@pytest.fixture(scope="module")
def top_level_names() -> set[str]:
    # -I: no current directory, no PYTHONPATH, no user site - only what the environment installs
    out = subprocess.run([sys.executable, "-I", "-c", LIST_TOP_LEVEL], capture_output=True,
                         text=True, check=True, cwd="/")
    names = set(json.loads(out.stdout)) - {PACKAGE.name}
    # the check is only meaningful if the listing sees the libraries a scoring process imports
    assert {"requests", "mlflow", "torch", "transformers", "json", "packaging"} <= names
    return names


def module_names(package: Path = PACKAGE) -> dict[str, list[str]]:
    """Every module and sub-package name in ``package`` -> where it is defined."""
    found: dict[str, list[str]] = {}
    for path in package.rglob("*.py"):
        if path.parent == package and path.name == "__init__.py":
            continue
        name = path.parent.name if path.name == "__init__.py" else path.stem
        found.setdefault(name, []).append(str(path.relative_to(package)))
    return found


def shadowing(package: Path, top_level: set[str]) -> dict[str, list[str]]:
    return {name: where for name, where in module_names(package).items() if name in top_level}


def test_no_module_shadows_a_top_level_library(top_level_names):
    found = shadowing(PACKAGE, top_level_names)
    assert not found, f"rename these modules, they shadow installed libraries: {found}"


def test_the_check_catches_the_old_requests_module(top_level_names, tmp_path):
    package = tmp_path / "pkg"
    (package / "serving").mkdir(parents=True)
    for name in ("__init__.py", "serving/__init__.py", "serving/requests.py",
                 "serving/request_parsing.py", "serving/batch_score.py"):
        (package / name).write_text("")
    assert shadowing(package, top_level_names) == {"requests": ["serving/requests.py"]}
