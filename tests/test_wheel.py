"""An installed wheel carries everything the SDK needs.

The wheel is built from a copy of this working tree, installed into a fresh virtual environment
(its dependencies seen through a ``.pth`` line pointing at this environment's site-packages, so
nothing is downloaded and the checkout's own sources are not on the path), and used from a folder
outside the checkout: a catalog pipeline found by name runs its components, reads its bundled
data and renders its card from the package's own files. (This is also the suite's run of the
fill-mask evaluation pipeline through the SDK; the notebook and the CLI twin run it too.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support import REPO

#: what the wheel is built from (the rest of the checkout is not the package's business)
SOURCES = ("pyproject.toml", "README.md", "sdk", "pipelines", "components", "model_cards")


def run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600,
                          **kwargs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_installed_wheel_runs_a_catalog_pipeline_outside_the_checkout(tiny_model, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info", "mlruns", "mlflow_model_folder"))
        else:
            shutil.copy2(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", tmp_path / "dist", source])
    wheel = next((tmp_path / "dist").glob("distilbert_catalog-*.whl"))

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                .stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel])

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["DISTILBERT_CATALOG_FRESH_STEPS"] = "1"  # each step a fresh interpreter, as on Azure ML
    script = (
        "import json, distilbert_catalog as dc\n"
        "run = dc.run_pipeline('fill-mask-evaluation', output_dir='out', "
        f"model_name={str(tiny_model)!r}, pseudo_perplexity_samples=5)\n"
        "print(json.dumps({'package': dc.__file__, 'outputs': {k: str(v) for k, v in "
        "run['outputs'].items()}}))\n")
    done = run([python, "-c", script], cwd=work, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(site)  # the installed copy, not the checkout
    evaluation = Path(result["outputs"]["evaluation_result"])
    assert evaluation.is_relative_to(work)
    # the pipeline's own checks: bundled data read, metrics computed, the card rendered from them
    record = json.loads((evaluation / "metrics.json").read_text())
    assert record["task"] == "fill-mask" and record["n_examples"] >= 300
    assert record["details"]["pseudo_perplexity"]["texts"] == 5
    card_dir = Path(result["outputs"]["model_card"])
    card = (card_dir / "README.md").read_text()
    m = record["metrics"]
    assert f"| Top-5 accuracy | {100 * m['top5_accuracy_uncased']:.1f}% |" in card
    assert "Pseudo-perplexity" in card and "By kind of masked word" in card
    assert (card_dir / "top_k_accuracy.png").exists()
    sample = json.loads((evaluation / "sample.json").read_text())
    assert json.dumps(sample["response"], indent=2) in card  # the card shows the real answer
