"""Training precision: explicit choices kept, ``auto`` measured on the machine, never read off flags."""

import json

import pytest
import torch
from transformers import AutoTokenizer, DataCollatorWithPadding

import distilbert_catalog.precision as precision
from distilbert_catalog.hardware import FLAGS_ENV
from distilbert_catalog.precision import (BF16_MIN_SPEEDUP, choose_training_precision,
                                          measure_training_step)
from distilbert_catalog.tasks import get_task
from distilbert_catalog.tiny import with_task_head


@pytest.fixture(scope="module")
def classifier(tiny_model, tmp_path_factory):
    folder = with_task_head(tiny_model, "text-classification", tmp_path_factory.mktemp("tc"))
    model = get_task("text-classification").model_class().from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = [dict(tokenizer(text), labels=i % 2) for i, text in enumerate(
        ["a short one", "a somewhat longer sentence than that", "mid length text here", "x"])]
    return model, DataCollatorWithPadding(tokenizer)(rows)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILBERT_CATALOG_CACHE", str(tmp_path))
    return tmp_path


def scripted_measurement(monkeypatch, speedup: float) -> list:
    calls = []

    def measure(model, batch, device):
        calls.append(device)
        return {"fp32_step_seconds": 1.0, "bf16_step_seconds": 1 / speedup, "speedup": speedup}

    monkeypatch.setattr(precision, "measure_training_step", measure)
    return calls


@pytest.mark.cpu_sensitive
def test_explicit_choice_wins_and_typos_fail(classifier, monkeypatch):
    model, batch = classifier
    calls = scripted_measurement(monkeypatch, 3.0)
    assert choose_training_precision("fp32", model, batch, "cpu").precision == "fp32"
    assert choose_training_precision("bf16", model, batch, "cpu").precision == "bf16"
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        choose_training_precision("fp16", model, batch, "cpu")
    assert calls == []


@pytest.mark.parametrize("kind", ["avx2", "avx512"])
def test_auto_is_fp32_unmeasured_where_bf16_is_only_emulated(classifier, monkeypatch, kind,
                                                             own_cache):
    monkeypatch.setenv(FLAGS_ENV, kind)
    calls = scripted_measurement(monkeypatch, 3.0)
    choice = choose_training_precision("auto", *classifier, "cpu")
    assert (choice.precision, calls) == ("fp32", [])
    assert "not measured" in choice.reason and "emulate" in choice.reason


@pytest.mark.parametrize("speedup, expected", [(1.4, "bf16"), (BF16_MIN_SPEEDUP, "bf16"),
                                               (1.1, "fp32"), (0.75, "fp32")])
def test_auto_trains_in_bf16_only_where_it_measured_clearly_faster(
        classifier, monkeypatch, own_cache, speedup, expected):
    """An AVX512-BF16 Xeon without AMX measured bf16 0.75x fp32: flags alone would pick bf16."""
    monkeypatch.setenv(FLAGS_ENV, "avx512-vnni-bf16")
    scripted_measurement(monkeypatch, speedup)
    choice = choose_training_precision("auto", *classifier, "cpu")
    assert choice.precision == expected
    assert f"{speedup:.2f}x" in choice.reason
    assert choice.as_config()["precision_measurement"]["speedup"] == speedup


@pytest.fixture
def quiet_machine(monkeypatch):
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (0.5, 0.5, 0.5))


def test_the_measurement_is_cached_per_cpu_kind(classifier, monkeypatch, own_cache,
                                                quiet_machine):
    calls = scripted_measurement(monkeypatch, 1.4)
    for kind in ("avx512-vnni-bf16", "avx512-vnni-bf16", "amx", "amx"):
        monkeypatch.setenv(FLAGS_ENV, kind)
        assert choose_training_precision("auto", *classifier, "cpu").precision == "bf16"
    assert len(calls) == 2  # once per kind of CPU
    cached = json.loads((own_cache / precision.CACHE_FILE).read_text())
    assert sorted(v["speedup"] for v in cached.values()) == [1.4, 1.4]


def test_a_measurement_taken_on_a_busy_machine_serves_its_run_and_is_not_cached(
        classifier, monkeypatch, own_cache, caplog):
    monkeypatch.setenv(FLAGS_ENV, "avx512-vnni-bf16")
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    calls = scripted_measurement(monkeypatch, 2.75)
    for _ in range(2):
        assert choose_training_precision("auto", *classifier, "cpu").precision == "bf16"
    assert len(calls) == 2  # measured again: nothing was kept
    assert not (own_cache / precision.CACHE_FILE).exists()
    assert "not caching the measurement, the machine was busy (load 64.0" in caplog.text


@pytest.mark.cpu_sensitive
def test_measuring_changes_no_weight_and_no_random_state(classifier):
    model, batch = classifier
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    result = measure_training_step(model, batch, "cpu", steps=2)
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert result["fp32_step_seconds"] > 0 and result["bf16_step_seconds"] > 0
    assert result["speedup"] == pytest.approx(
        result["fp32_step_seconds"] / result["bf16_step_seconds"], rel=0.01)
    assert result["batch_shape"] == list(batch["input_ids"].shape)
    assert result["cpu"]["model"] and "torch" in result["cpu"]
