"""Each setting is declared once in code; the YAML and Markdown that repeat it are held to it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from distilbert_catalog.defaults import BATCH_SIZE_ENV, INFERENCE_BATCH_SIZE
from distilbert_catalog.serving.limits import Limits

REPO = Path(__file__).resolve().parents[1]
DEPLOYMENTS = sorted((REPO / "components" / "deploy").rglob("deployment.yaml"))
LIMITS = {Limits.env_names()[f.name]: f.default for f in dataclasses.fields(Limits)}


def docs() -> list[Path]:
    """The project's Markdown: README and, where it has one, docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_deployments_state_the_code_defaults(path):
    env = yaml.safe_load(path.read_text())["environment_variables"]
    assert int(env[BATCH_SIZE_ENV]) == INFERENCE_BATCH_SIZE
    stated = {name: int(value) for name, value in env.items() if name in LIMITS}
    assert stated == {name: LIMITS[name] for name in stated}


def test_the_online_deployment_states_every_limit():
    [online] = [p for p in DEPLOYMENTS if p.parent.name == "online"]
    assert set(LIMITS) <= set(yaml.safe_load(online.read_text())["environment_variables"])


def test_the_docs_limit_table_states_the_code_defaults():
    rows = {}
    for path in docs():
        for name, value in re.findall(r"^\| `(DISTILBERT_MAX_\w+)` \| (\d+) \|", path.read_text(),
                                      flags=re.M):
            rows.setdefault(name, set()).add(int(value))
    assert rows == {name: {value} for name, value in LIMITS.items()}
