"""Shared, session-scoped fixtures: a tiny DistilBERT, and one emotion model trained once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Offline by construction: nothing in the suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)

REPO = Path(__file__).resolve().parents[1]
EMOTION_LABELS = "sadness,joy,love,anger,fear,surprise"
#: probe sentences in the sample's style, two cue words each: a trained model must get them right
JOY, FEAR = "i feel cheerful and delighted today", "i feel terrified and frightened today"


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Track every run of the session in a throwaway local file store."""
    from distilbert_catalog.tracking import configure_tracking

    store = tmp_path_factory.mktemp("mlruns")
    configure_tracking(store)
    yield store


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from distilbert_catalog.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-distilbert")


@pytest.fixture(scope="session")
def pretrained_model() -> Path:
    """The pretrained offline DistilBERT (MiniLM-L6 weights), built once and cached on disk."""
    from distilbert_catalog.pretrained import pretrained_distilbert

    return pretrained_distilbert()


@pytest.fixture(scope="session")
def emotion_dir() -> Path:
    from distilbert_catalog.samples import sample_dir

    return sample_dir("emotion")


@pytest.fixture(scope="session")
def emotion_model(tiny_model, emotion_dir, tmp_path_factory):
    """The tiny model fine-tuned on the bundled emotion sample (the quickstart's settings)."""
    import distilbert_catalog as dc
    from distilbert_catalog.quickstart import TINY_OVERRIDES

    return dc.finetune("text-classification", output_dir=tmp_path_factory.mktemp("emotion"),
                       model_name=str(tiny_model), train_data=str(emotion_dir),
                       label_names=EMOTION_LABELS, **TINY_OVERRIDES)


@pytest.fixture(scope="session")
def emotion_eval(emotion_model, emotion_dir, tmp_path_factory) -> tuple[dict, Path]:
    import distilbert_catalog as dc

    out = tmp_path_factory.mktemp("emotion-eval")
    record = dc.evaluate("text-classification", output_dir=out,
                         mlflow_model_path=str(emotion_model.mlflow_model_dir),
                         test_data=str(emotion_dir), label_names=EMOTION_LABELS)
    return record, out
