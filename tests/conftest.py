"""Shared, session-scoped fixtures: a tiny DistilBERT, the pretrained offline DistilBERT, and
one emotion model fine-tuned from it once."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.support import EMOTION_LABELS

# Offline by construction: nothing in the suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)

# pytest-xdist runs one worker per core: each worker and every process it starts gets its share of
# the cores, so two workers' intra-op thread pools never oversubscribe the machine (on 2 cores,
# two 2-thread pools made tiny-model steps 20x slower, spinning at barriers).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ.setdefault("OMP_NUM_THREADS", _THREADS)
    os.environ.setdefault("MKL_NUM_THREADS", _THREADS)


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Track every run of the session in a throwaway local file store."""
    from distilbert_catalog.tracking import configure_tracking

    store = tmp_path_factory.mktemp("mlruns")
    configure_tracking(store)
    yield store


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The default tiny DistilBERT, from the catalog's cache (as ``base_model(tiny=True)`` gives
    it: tests/test_workspace.py checks it is the default build, file for file)."""
    from distilbert_catalog.tiny import tiny_distilbert

    return tiny_distilbert()


@pytest.fixture(scope="session")
def biased_fill_mask_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny masked-LM with one more special token, [ENT], and a head biased so that every
    special token outranks every word ([CLS] first, then [SEP], [PAD], [MASK], [UNK], [ENT]).
    Words keep their logits, hence their order: fill-mask must answer as for the tiny model."""
    import torch
    from transformers import AutoTokenizer, DistilBertForMaskedLM

    out = tmp_path_factory.mktemp("models") / "tiny-biased-to-special-tokens"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENT]"]})
    model = DistilBertForMaskedLM.from_pretrained(tiny_model)
    model.resize_token_embeddings(len(tokenizer))
    bias = model.vocab_projector.bias
    assert bias.shape[0] == len(tokenizer)
    with torch.no_grad():
        bias[tokenizer.cls_token_id] += 60.0
        for n, token in enumerate(["[SEP]", "[PAD]", "[MASK]", "[UNK]", "[ENT]"]):
            bias[tokenizer.convert_tokens_to_ids(token)] += 50.0 - n
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def pretrained_model() -> Path:
    """The pretrained offline DistilBERT (MiniLM-L6 weights), built once and cached on disk."""
    from distilbert_catalog.pretrained import pretrained_distilbert

    return pretrained_distilbert()


@pytest.fixture(scope="session")
def minilm_source() -> Path:
    """The BERT folder the pretrained offline DistilBERT is converted from (all-MiniLM-L6-v2)."""
    from distilbert_catalog.pretrained import source_model_dir

    return source_model_dir()


@pytest.fixture(scope="session")
def emotion_dir() -> Path:
    from distilbert_catalog.samples import sample_dir

    return sample_dir("emotion")


#: files whose tests share nothing costly but session fixtures (each runs a notebook, a CLI sample,
#: or a child pytest): pytest-xdist spreads them test by test over its workers; every other file
#: is one unit on one worker, so its module fixtures and servers are built once
SPREAD = {"test_notebooks.py", "test_cli_samples.py"}


#: seconds each long unit of work took (2 workers on 2 cores, AMD EPYC, 2026-12-03 evening):
#: the units start longest first, so the many short files even out the workers' ends (a stale
#: figure only reorders; a unit not named here starts after these, in collection order)
MEASURED_S = {
    "tests/test_ddp.py": 104,
    "tests/test_benchmarks.py": 110,
    "tests/tasks/text_pair_classification/test_text_pair_end_to_end.py": 98,
    "tests/serving/test_batch.py": 89,
    "tests/test_distillation.py": 100,
    "tests/tasks/fill_mask/test_fill_mask_end_to_end.py": 54,
    "tests/test_cli_samples.py::test_emotion_twin_runs_the_pipeline_yaml_end_to_end": 46,
    "tests/test_modeling.py": 40,
    "tests/tasks/question_answering/test_qa_end_to_end.py": 38,
    "tests/test_notebooks.py::test_notebook_runs_in_local_mode[emotion-detection]": 36,
    "tests/test_notebooks.py::test_notebook_runs_in_local_mode[extractive-qa]": 34,
    "tests/serving/test_hostile_requests.py": 33,
    "tests/test_training_resume.py": 31,
    "tests/test_notebooks.py::test_notebook_runs_in_local_mode[fill-mask-batch-endpoint]": 31,
    "tests/test_cpu_kinds.py": 27,
    "tests/test_notebooks.py::test_notebook_runs_in_local_mode[token-classification]": 25,
    "tests/test_backends.py": 24,
    "tests/test_docs.py": 23,
    "tests/test_cli_samples.py::test_local_pipeline_twins_run[extractive-qa": 22,
    "tests/test_cli.py": 22,
    "tests/test_notebooks.py::test_notebook_runs_in_local_mode": 19,
    "tests/test_cli_samples.py::test_local_online_endpoint_twins_answer": 18,
    "tests/test_cli_samples.py::test_local_pipeline_twins_run": 16,
    "tests/tasks/token_classification/test_ner_end_to_end.py": 16,
    "tests/test_wheel.py": 15,
    "tests/runner/test_serve_lifecycle.py": 12,
    "tests/test_notebooks.py::test_notebook_runs_in_local_mode[evaluate-model": 12,
}


def _measured(nodeid: str) -> int:
    """The figure of the longest key ``nodeid`` starts with (0: not measured)."""
    keys = [key for key in MEASURED_S if nodeid.startswith(key)]
    return MEASURED_S[max(keys, key=len)] if keys else 0


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -_measured(item.nodeid))  # stable: a file stays in order


def pytest_xdist_make_scheduler(config, log):
    """Each file is one unit of work except the SPREAD files, whose tests are one unit each.

    (Not ``xdist_group`` marks with ``--dist loadgroup``: pytest-xdist 3.8 applies the group by
    rewriting ``item._nodeid``, which pytest 9 no longer reads, so every test became its own unit
    and both workers built the same module fixtures: measured, the text-pair file's fine-tunes
    ran on both.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if Path(path).name in SPREAD else path

    config.option.loadscopereorder = False  # the units start in collection order (above)
    return FileScheduling(config, log)


def built_once(tmp_path_factory, name: str, build):
    """``build(folder)``'s result, built by one pytest-xdist worker of the session (under a file
    lock) and read by the others: expensive session fixtures are not rebuilt per worker."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    result = shared / f"{name}.pickle"
    with FileLock(str(shared / f"{name}.lock")):
        if not result.exists():
            value = build(shared / name)
            result.write_bytes(pickle.dumps(value))
    return pickle.loads(result.read_bytes())


@pytest.fixture(scope="session")
def emotion_model(pretrained_model, emotion_dir, tmp_path_factory, mlflow_store):
    """The pretrained DistilBERT fine-tuned on the bundled emotion sample (the quickstart's way);
    ``tracking_store``: the MLflow store its run was logged to."""
    import distilbert_catalog as dc
    from distilbert_catalog.quickstart import PRETRAINED_OVERRIDES

    def build(folder):
        result = dc.finetune("text-classification", output_dir=folder,
                             model_name=str(pretrained_model), train_data=str(emotion_dir),
                             label_names=EMOTION_LABELS, **PRETRAINED_OVERRIDES)
        result.tracking_store = mlflow_store
        return result

    return built_once(tmp_path_factory, "emotion", build)


@pytest.fixture(scope="session")
def emotion_eval(emotion_model, emotion_dir, tmp_path_factory) -> tuple[dict, Path]:
    import distilbert_catalog as dc

    def build(out):
        record = dc.evaluate("text-classification", output_dir=out,
                             mlflow_model_path=str(emotion_model.mlflow_model_dir),
                             test_data=str(emotion_dir), label_names=EMOTION_LABELS)
        return record, out

    return built_once(tmp_path_factory, "emotion-eval", build)
