"""The README is the front page; the rest lives in docs/. Every relative link in README, docs and
model pages resolves (files and #anchors), and every README command block marked runnable runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "model_cards" / "README.md",
         *sorted((REPO / "model_cards").glob("*/README.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
RUNNABLE = re.compile(r"<!-- runnable -->\n```bash\n(.*?)\n```", re.S)
INSTALL = ('python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e ".[test]" '
           '-c environments/constraints.txt && .venv/bin/distilbert-catalog quickstart')


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_readme_is_the_front_page():
    text = README.read_text()
    assert len(text) <= 15_000
    first_block = text[text.index("```bash\n") + 8:text.index("```", text.index("```bash\n") + 8)]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands == [INSTALL, ".venv/bin/pytest"]
    assert INSTALL in (REPO / ".ci" / "run").read_text()
    for doc in (REPO / "docs").glob("*.md"):  # every topic page is reachable from the README
        assert f"](docs/{doc.name})" in text, doc.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    dead = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            dead.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(target)
    assert dead == []


def test_runnable_readme_blocks_run(tmp_path):
    """The README's runnable block is also the suite's run of the fill-mask batch endpoint's
    local twin: its ``mktemp -d`` folders land in this test's TMPDIR, where the scored rows are
    counted."""
    import pandas as pd

    blocks = RUNNABLE.findall(README.read_text())
    assert blocks
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TMPDIR": str(tmp_path)}
    for block in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    scored = [pd.read_csv(p) for p in tmp_path.glob("*/batch/*.csv")]
    requests = (REPO / "cli" / "requests" / "fill-mask-batch").glob("*.jsonl")
    assert sum(len(f) for f in scored) == sum(len(p.read_text().splitlines()) for p in requests)
