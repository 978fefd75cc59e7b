"""A fine-tune killed mid-run (SIGKILL, as an evicted node or an OOM kill ends it) and restarted
with ``resume_from_checkpoint`` ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import EMOTION_LABELS

EPOCHS = 3

FINETUNE = """
import sys, json
import distilbert_catalog as dc
out, resume = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
result = dc.finetune("text-classification", output_dir=out, model_name={model!r},
                     train_data={data!r}, label_names={labels!r}, learning_rate=3e-3,
                     per_device_train_batch_size=32, num_train_epochs={epochs},
                     save_total_limit=2, resume_from_checkpoint=resume)
"""


def _metrics(out: Path) -> dict:
    found = list(out.rglob("metrics.json"))
    assert found, f"no metrics.json under {out}"
    return json.loads(found[0].read_text())["metrics"]


def _epoch(state: Path) -> float:
    try:
        return float(json.loads(state.read_text()).get("epoch") or 0)
    except (OSError, ValueError):  # being written
        return 0.0


def _run(script: Path, out: Path, env: dict, resume: str | None = None, *,
         kill_after_checkpoint: int | None = None) -> subprocess.CompletedProcess | None:
    argv = [sys.executable, str(script), str(out)] + ([resume] if resume else [])
    if kill_after_checkpoint is None:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
        return done
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            # trainer_state.json is the last file of a checkpoint the Trainer writes
            if any(_epoch(state) >= kill_after_checkpoint
                   for state in out.rglob("checkpoint-*/trainer_state.json")):
                break
            time.sleep(0.1)
        assert process.poll() is None, "training ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    return None


def test_training_killed_mid_run_resumes_to_the_same_metrics(tiny_model, emotion_dir, tmp_path):
    script = tmp_path / "finetune.py"
    script.write_text(FINETUNE.format(model=str(tiny_model), data=str(emotion_dir),
                                      labels=EMOTION_LABELS, epochs=EPOCHS))
    env = {**os.environ, "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH")]))}

    _run(script, tmp_path / "straight", env)
    straight = _metrics(tmp_path / "straight")

    killed = tmp_path / "killed"
    _run(script, killed, env, kill_after_checkpoint=1)
    assert not list(killed.rglob("metrics.json")), "the killed run must not have finished"
    checkpoints = next(killed.rglob("checkpoints"))
    _run(script, tmp_path / "resumed", env, resume=str(checkpoints))
    resumed = _metrics(tmp_path / "resumed")

    straight_state, state = (json.loads(max(
        (tmp_path / run).rglob("checkpoint-*/trainer_state.json"),
        key=lambda p: int(p.parent.name.split("-")[1])).read_text())
        for run in ("straight", "resumed"))
    assert state["epoch"] == EPOCHS
    # the same best checkpoint (the one the final metrics come from), even when epochs tie
    assert Path(state["best_model_checkpoint"]).name == \
        Path(straight_state["best_model_checkpoint"]).name
    assert state["best_metric"] == straight_state["best_metric"]
    for name in ("eval_accuracy", "eval_loss"):
        assert resumed[name] == pytest.approx(straight[name], abs=1e-3), (name, straight, resumed)
