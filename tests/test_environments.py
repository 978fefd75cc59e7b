"""The environment images, tested without Docker (opt-in: it installs two virtual environments).

Each image is ``context/Dockerfile`` + a pinned ``requirements.txt``. What can be checked here: the
pinned requirements install into a clean virtual environment, with the CPU build of torch and no
CUDA libraries, and the code the images run works from it, as Azure ML runs it - the inference
environment serves a model through the scoring script under the real ``azmlinfsrv`` (loopback
port), the training environment runs a fine-tune component's ``run.py`` with the package beside
it (``additional_includes``).

Two differences from the images, both stated in the README: ``torch==2.13.0+cpu`` comes from
wherever this machine's pip finds it, as the project's own ``pip install torch==2.13.0`` does
(here: a local CPU wheel), rather than from PyTorch's CPU index, which is unreachable here
(``DISTILBERT_CATALOG_ENV_INDEX`` adds an index, e.g. https://download.pytorch.org/whl/cpu, where
one is reachable); and the Python is ``DISTILBERT_CATALOG_ENV_PYTHON`` (default: the one running
the tests), because the inference image's 3.12 has no CPU torch wheel on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO

ENABLED = os.environ.get("DISTILBERT_CATALOG_ENV_TEST") == "1"
pytestmark = pytest.mark.skipif(not ENABLED, reason=(
    "opt-in, ~15 min on 2 cores: installs each environment's pinned requirements into a clean "
    "virtual environment; run DISTILBERT_CATALOG_ENV_TEST=1 .venv/bin/pytest "
    "tests/test_environments.py -s (optional: DISTILBERT_CATALOG_ENV_PYTHON=/path/to/python3.12, "
    "DISTILBERT_CATALOG_ENV_INDEX=https://download.pytorch.org/whl/cpu)"))

PYTHON = os.environ.get("DISTILBERT_CATALOG_ENV_PYTHON") or sys.executable
INDEX = os.environ.get("DISTILBERT_CATALOG_ENV_INDEX")
REPORT = """import importlib.metadata as m, json, platform, torch
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                  "cuda": torch.version.cuda,
                  "gpu_packages": sorted(d.metadata["Name"] for d in m.distributions()
                                         if d.metadata["Name"].lower().startswith(
                                             ("nvidia-", "triton", "cuda")))}))
"""


def install(name: str, root: Path) -> tuple[Path, float]:
    """A clean venv with ``environments/<name>``'s pinned requirements; (its python, seconds)."""
    start = time.monotonic()
    venv = root / f"{name}-venv"
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    requirements = REPO / "environments" / name / "context" / "requirements.txt"
    argv = [str(python), "-m", "pip", "install", "--no-cache-dir", "-q", "-r", str(requirements)]
    if INDEX:
        argv += ["--extra-index-url", INDEX]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return python, time.monotonic() - start


def cpu_only(python: Path) -> dict:
    done = subprocess.run([str(python), "-c", REPORT], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] == "2.13.0+cpu" and report["cuda"] is None, report
    assert report["gpu_packages"] == [], report
    return report


def test_inference_environment_serves_a_model_with_the_scoring_script(tiny_model, tmp_path):
    import distilbert_catalog as dc
    from distilbert_catalog.runner.endpoints import _free_port, _server_env, invoke

    python, seconds = install("inference", tmp_path)
    report = cpu_only(python)
    model = dc.package_model(tiny_model, tmp_path / "mlflow")  # packaged where it was built
    # the deployment's code_configuration: code ../../../sdk, scoring_script .../score.py
    code = tmp_path / "code"
    shutil.copytree(REPO / "sdk" / "distilbert_catalog", code / "distilbert_catalog",
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = code / "distilbert_catalog" / "serving" / "score.py"
    port = _free_port()
    env = {**_server_env(script, model, {"DISTILBERT_BACKEND": "fp32"}),
           "PYTHONPATH": str(code)}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(python), "-m", "distilbert_catalog.runner.infsrv", "--host", "127.0.0.1",
             "--entry_script", str(script), "--model_dir", str(model), "--port", str(port)],
            cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        status, body = None, None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, body = invoke(f"http://127.0.0.1:{port}/score",
                                      {"inputs": {"input_string": ["Paris is the [MASK]."]}})
                if status == 200:
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(1)
        assert status == 200, (status, body, log.read_text()[-4000:])
        assert isinstance(body, list) and list(body[0]) == ["0"] and body[0]["0"].strip()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        server.wait(timeout=60)
    print(f"\ninference environment: installed in {seconds:.0f} s, {report}")


def test_training_environment_runs_a_finetune_component(tiny_model, emotion_dir, tmp_path):
    from distilbert_catalog.runner.component import build_argv, load_spec, output_paths

    python, seconds = install("training", tmp_path)
    report = cpu_only(python)
    folder = REPO / "components" / "finetune" / "text_classification"
    spec = load_spec(folder / "spec.yaml")
    # the job's snapshot: the component folder with its additional_includes beside run.py
    job = tmp_path / "job"
    shutil.copytree(folder, job)
    shutil.copytree(REPO / "sdk" / "distilbert_catalog", job / "distilbert_catalog",
                    ignore=shutil.ignore_patterns("__pycache__"))
    outputs = output_paths(spec, tmp_path / "outputs")
    for path in outputs.values():
        path.mkdir(parents=True)
    argv = build_argv(spec, {"model_name": str(tiny_model), "train_data": str(emotion_dir),
                             "label_names": "sadness,joy,love,anger,fear,surprise",
                             "max_steps": 2, "precision": "fp32"}, outputs)
    argv[0] = str(python)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(argv, cwd=job, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert (outputs["mlflow_model_folder"] / "MLmodel").exists()
    assert (outputs["pytorch_model_folder"] / "config.json").exists()
    print(f"\ntraining environment: installed in {seconds:.0f} s, {report}")
