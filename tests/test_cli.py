"""The CLI drives the local runner over the real component and pipeline YAML."""

import json
import sys
from pathlib import Path

from distilbert_catalog.cli import main
from tests.support import EMOTION_LABELS, REPO


def test_run_single_component_yaml(emotion_model, emotion_dir, tmp_path):
    """As a user runs it: the installed command in a fresh process."""
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).with_name("distilbert-catalog"))
    done = subprocess.run(
        [cli, "run", str(REPO / "components/evaluate/text_classification/spec.yaml"),
         "--input", f"mlflow_model_path={emotion_model.mlflow_model_dir}",
         "--input", f"test_data={emotion_dir}", "--set", f"label_names={EMOTION_LABELS}",
         "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = json.loads(done.stdout[done.stdout.rindex("\n{") + 1:])  # printed last
    assert outputs["evaluation_result"] == str(tmp_path / "evaluation_result")
    record = json.loads((tmp_path / "evaluation_result" / "metrics.json").read_text())
    assert record["metrics"]["accuracy"] >= 0.5  # chance 0.17; test topics are unlike training


def test_pretrained_prints_the_cached_model_folder(pretrained_model):
    """As a user runs it: a fresh process finds the model the session built, without rebuilding."""
    import subprocess
    import sys
    from pathlib import Path

    cli = Path(sys.executable).parent / "distilbert-catalog"
    done = subprocess.run([str(cli), "pretrained", "--cache-dir", str(pretrained_model.parent)],
                          capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == str(pretrained_model)
    assert "building" not in done.stderr


def test_specs_check_passes_on_the_committed_tree(capsys):
    assert main(["specs", "--check", "--root", str(REPO)]) == 0


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    code = main(["run", str(REPO / "pipelines" / "emotion-detection.yaml"),
                 "--set", "no_such_input=1", "--output-dir", str(tmp_path)])
    assert code == 2
    assert "no_such_input" in capsys.readouterr().err


def test_a_component_azure_ml_would_refuse_exits_2_naming_the_file(tmp_path):
    """`distilbert-catalog run` in a fresh process, as users run it: azure-ai-ml's reading of the
    spec refuses an input type it does not know, before anything runs."""
    import subprocess

    spec = tmp_path / "bad.yaml"
    spec.write_text((REPO / "components/finetune/text_classification/spec.yaml").read_text()
                    .replace("type: integer", "type: integr", 1))
    cli = Path(sys.executable).with_name("distilbert-catalog")
    done = subprocess.run([str(cli), "run", str(spec), "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{spec}: not a valid component for Azure ML" in done.stderr and "integr" in done.stderr
    assert not (tmp_path / "out").exists()
