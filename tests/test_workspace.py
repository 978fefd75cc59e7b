"""dc.workspace(): local unless a workspace is configured; Azure mode submits the same azure-ai-ml
objects the local mode runs (checked against a recording client: no network here)."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import distilbert_catalog as dc
from distilbert_catalog.workspace import Workspace


def test_local_by_default_and_without_a_workspace(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no config.json anywhere up from here
    assert dc.workspace().mode == "local"
    assert dc.workspace("local", workspace_name="ws").mode == "local"
    assert "local mode" in capsys.readouterr().out
    with pytest.raises(ValueError, match="mode must be 'local' or 'azure'"):
        Workspace("cloud")
    with pytest.raises(ValueError, match="needs an MLClient"):
        Workspace("azure")


class Recorder:
    """Stands in for MLClient's operation groups; records what is submitted."""

    def __init__(self):
        self.calls = []
        self.jobs = SimpleNamespace(create_or_update=self._create, stream=self._record("stream"),
                                    download=self._download)

    def _record(self, name):
        return lambda *a, **k: self.calls.append((name, a, k))

    def _create(self, job):
        self.calls.append(("create", job))
        return SimpleNamespace(name="job-1")

    def _download(self, name, output_name, download_path):
        self.calls.append(("download", name, output_name))


def test_azure_mode_submits_the_pipeline_job_local_mode_runs(tmp_path):
    from azure.ai.ml.entities import PipelineJob

    client = Recorder()
    run = Workspace("azure", output_dir=tmp_path, ml_client=client).run_pipeline(
        "emotion-detection", model_name="distilbert-base-uncased", num_train_epochs=2)
    kind, job = client.calls[0]
    assert kind == "create" and isinstance(job, PipelineJob)
    assert job.inputs.num_train_epochs._data == 2
    assert job.inputs.model_name._data == "distilbert-base-uncased"
    assert ("stream", ("job-1",), {}) in client.calls
    assert {c[2] for c in client.calls if c[0] == "download"} == set(run.outputs)
    assert set(run.outputs) == {"model_card", "mlflow_model", "evaluation_result"}
    with pytest.raises(TypeError, match="unknown pipeline inputs"):
        Workspace("azure", ml_client=client).run_pipeline("emotion-detection", epochs=2)


def test_base_model_is_the_hub_id_in_azure_and_offline_locally(tmp_path):
    from distilbert_catalog.tiny import build_tiny_model

    assert Workspace("azure", ml_client=Recorder()).base_model("distilbert-base-cased") == \
        "distilbert-base-cased"
    cache = tmp_path / "cache"
    with pytest.MonkeyPatch.context() as m:
        m.setenv("DISTILBERT_CATALOG_CACHE", str(cache))
        tiny = Path(Workspace("local", output_dir=tmp_path).base_model(tiny=True))
    assert tiny.parent == cache and tiny.name.startswith("tiny-distilbert-")
    # the cached folder is the default build: the same files, config and seeded weights (the
    # WordPiece trainer breaks frequency ties in no fixed order: vocabularies differ run to run)
    fresh = build_tiny_model(tmp_path / "fresh")
    assert sorted(p.name for p in tiny.iterdir()) == sorted(p.name for p in fresh.iterdir())
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        assert (tiny / name).read_bytes() == (fresh / name).read_bytes(), name
    # asked again, in a fresh process: the cached folder, without importing PyTorch
    script = ("import sys, distilbert_catalog as dc\n"
              "print(dc.workspace('local', output_dir=sys.argv[1]).base_model(tiny=True))\n"
              "assert 'torch' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                          text=True, env={**os.environ, "DISTILBERT_CATALOG_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(tiny)
    assert [p.name for p in cache.iterdir()] == [tiny.name]  # no temporary folder left behind
