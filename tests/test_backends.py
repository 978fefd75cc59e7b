"""Inference backends and the quality gate (distilbert_catalog.backends, .quality_gate).

Speed is measured in benchmarks/, never asserted here; these tests pin what each backend answers,
how ``auto`` chooses, and the gate's verdicts.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distilbert_catalog.backends import (BACKENDS, EXPORT_TOLERANCE, apply_backend,
                                         resolve_backend, unavailable)
from distilbert_catalog.errors import CatalogError
from distilbert_catalog.hardware import FLAGS_ENV, SIMULATED_KINDS, cpu_description
from distilbert_catalog.inference import Predictor
from distilbert_catalog.serving import SCORE_SCRIPT
from distilbert_catalog.tasks import TASKS as DISCOVERED, get_task
from tests.support import REPO

TASKS = sorted(DISCOVERED)  # every task folder, the ones added later too


@pytest.fixture(scope="module")
def task_models(tiny_model, tmp_path_factory) -> dict[str, Path]:
    from distilbert_catalog.tiny import with_task_head

    out = tmp_path_factory.mktemp("backend-models")
    return {task: with_task_head(tiny_model, task, out / task) for task in TASKS}


def predictor(folder: Path, task: str, backend: str, onnx_dir: Path) -> Predictor:
    from transformers import AutoTokenizer

    t = get_task(task)
    return Predictor(t.model_class().from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                     t, backend=backend, onnx_dir=onnx_dir)


def request_rows(task: str) -> list[dict]:
    request = get_task(task).example_request()
    columns = list(request)
    return [dict(zip(columns, values)) for values in zip(*request.values())]


@pytest.mark.cpu_sensitive
@pytest.mark.parametrize("task", TASKS)
def test_onnx_answers_equal_fp32_and_lossy_backends_answer_in_shape(task, task_models, tmp_path):
    """The exact backends give fp32's answers; int8 ones give answers of the same shape."""
    rows = request_rows(task)
    answers = {}
    for backend in ("fp32", "onnx", "int8", "onnx-int8"):
        p = predictor(task_models[task], task, backend, tmp_path / "onnx")
        assert p.backend == backend
        answers[backend] = p.predict(rows)
    assert _close(answers["onnx"], answers["fp32"]), (answers["onnx"], answers["fp32"])
    for lossy in ("int8", "onnx-int8"):
        assert len(answers[lossy]) == len(rows)
        assert [type(a) for a in answers[lossy]] == [type(a) for a in answers["fp32"]]
    # the export wrote both graphs once and reuses them
    assert sorted(p.name for p in (tmp_path / "onnx").glob("*.onnx")) == [
        "encoder-int8.onnx", "encoder.onnx"]


def _close(a, b, tol=1e-4):
    """Equal answers, with scores equal within ``tol`` (ONNX Runtime's fused kernels round
    differently from PyTorch's)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= tol
    return a == b


@pytest.mark.cpu_sensitive
def test_onnx_hidden_states_match_pytorch_on_padded_batches(task_models, tmp_path):
    from transformers import AutoModel

    folder = task_models["fill-mask"]
    reference = AutoModel.from_pretrained(folder).eval()
    model = apply_backend(get_task("fill-mask").model_class().from_pretrained(folder).eval(),
                          "onnx", onnx_dir=tmp_path)
    ids = torch.randint(5, reference.config.vocab_size, (3, 37),
                        generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    mask[2, 3:] = 0
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.bool()
    assert float((got[keep] - expected[keep]).abs().max()) <= EXPORT_TOLERANCE


def test_served_graphs_keep_add_and_layer_norm_apart(task_models, tmp_path):
    """SkipLayerNormalization is slow on AVX2 CPUs: neither the export nor the session fuses it,
    while the fusions that pay (attention, bias-GELU, embeddings) are there."""
    import onnx
    import onnxruntime as ort

    from distilbert_catalog.backends import ONNX_FILES, SLOW_FUSIONS

    model = get_task("fill-mask").model_class().from_pretrained(task_models["fill-mask"]).eval()
    apply_backend(model, "onnx-int8", onnx_dir=tmp_path)
    for backend, name in ONNX_FILES.items():
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / f"served-{name}")
        ort.InferenceSession(str(tmp_path / name), options, providers=["CPUExecutionProvider"],
                             disabled_optimizers=list(SLOW_FUSIONS))
        ops = {n.op_type for n in onnx.load(tmp_path / f"served-{name}").graph.node}
        assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops, backend
        assert {"BiasGelu"} <= ops and ops & {"Attention", "QAttention"}, backend


def test_bf16_is_refused_where_the_cpu_only_emulates_it(monkeypatch):
    monkeypatch.setenv(FLAGS_ENV, "avx2")
    assert "emulate" in unavailable("bf16", "cpu")
    with pytest.raises(CatalogError, match="bf16 cannot run here.*emulate"):
        resolve_backend("bf16", "cpu")
    monkeypatch.setenv(FLAGS_ENV, "avx512-vnni-bf16")
    assert unavailable("bf16", "cpu") is None


def linear_inputs(model_folder: Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The fp32 encoder and the real input of each of its Linear layers for two sentences."""
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(model_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    inputs = {}
    hooks = [layer.register_forward_pre_hook(
        lambda _, args, name=name: inputs.__setitem__(name, args[0].flatten(0, -2)))
        for name, layer in encoder.named_modules() if type(layer) is torch.nn.Linear]
    batch = tokenizer(["The committee postponed the vote until spring, citing missing figures.",
                       "Why do cats purr?"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        encoder(**batch)
    for hook in hooks:
        hook.remove()
    return encoder, inputs


@pytest.mark.parametrize("backend", ["int8", "int8-vnni"])
def test_torch_int8_layers_compute_exactly_their_rounding(backend, pretrained_model):
    """Each Linear layer of the PyTorch int8 backends equals integer arithmetic on its rounded
    input (one uint8 scale per batch: 7 bits for int8, 8 for int8-vnni) and per-channel int8
    weights; a saturating kernel (8-bit inputs on AVX2) would be off by whole quanta."""
    from distilbert_catalog.backends import quantize_torch_int8

    if reason := unavailable(backend):
        pytest.skip(reason)
    encoder, inputs = linear_inputs(pretrained_model)
    full_range = backend == "int8-vnni"
    quantized = quantize_torch_int8(copy.deepcopy(encoder), full_range_inputs=full_range)
    error = 0.0
    for name, x in inputs.items():
        layer = quantized.get_submodule(name)
        weight = layer.weight()
        assert weight.qscheme() == torch.per_channel_affine
        scale, zero = torch._choose_qparams_per_tensor(x, reduce_range=not full_range)
        x_q = torch.quantize_per_tensor(x, scale, zero, torch.quint8).int_repr().double() - zero
        assert int(x_q.max() - x_q.min()) <= (255 if full_range else 127)
        w_q = weight.int_repr().double()
        exact = (x_q @ w_q.T) * scale * weight.q_per_channel_scales().double() \
            + layer.bias().detach().double()
        with torch.inference_mode():
            got = layer(x).double()
            reference = encoder.get_submodule(name)(x).double()
        assert float((got - exact).abs().max()) <= 1e-5 * float(exact.abs().max()), name
        error += float((got - reference).pow(2).mean())
    if full_range:  # on the same inputs, 8-bit inputs round half as coarsely as 7-bit ones
        seven_bit = quantize_torch_int8(copy.deepcopy(encoder), full_range_inputs=False)
        with torch.inference_mode():
            error_7 = sum(float((seven_bit.get_submodule(n)(x) - encoder.get_submodule(n)(x))
                                .double().pow(2).mean()) for n, x in inputs.items())
        assert error < 0.5 * error_7, (error, error_7)


def test_int8_vnni_is_refused_without_avx512_vnni(monkeypatch):
    from distilbert_catalog.hardware import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "avx512")  # AVX-512 without VNNI
    assert "AVX512-VNNI" in unavailable("int8-vnni", "cpu")
    assert unavailable("int8", "cpu") is None
    with pytest.raises(CatalogError, match="int8-vnni cannot run here.*saturate"):
        resolve_backend("int8-vnni", "cpu")
    monkeypatch.setenv(FLAGS_ENV, "avx512-vnni-bf16")
    assert unavailable("int8-vnni", "cpu") is None


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(CatalogError, match="choose one of auto, fp32, bf16, int8, int8-vnni, onnx"):
        resolve_backend("fp8")


def gate_record(cpu: dict | None = None, **speedups_and_verdicts) -> dict:
    return {"cpu": cpu or cpu_description(),
            "candidates": [{"backend": name, "speedup": speedup, "passed": passed}
                           for name, (speedup, passed) in speedups_and_verdicts.items()]}


@pytest.mark.parametrize("kind", sorted(SIMULATED_KINDS))
def test_auto_without_a_gate_record_serves_exact_fp32_on_every_cpu(monkeypatch, kind):
    """Never from flags: an AVX512-BF16 Xeon without AMX ran bf16 1.2-1.4x slower than fp32."""
    monkeypatch.setenv(FLAGS_ENV, kind)
    assert resolve_backend("auto", "cpu", None) == "fp32"


@pytest.mark.parametrize("kind", sorted(SIMULATED_KINDS))
def test_auto_serves_the_fastest_backend_that_passed(monkeypatch, kind):
    monkeypatch.setenv(FLAGS_ENV, kind)
    record = gate_record(fp32=(1.0, True), int8=(2.6, False), onnx=(1.8, True),
                         **{"onnx-int8": (2.3, True), "bf16": (3.0, True)})
    # int8 failed the gate; bf16 passed and is fastest where the CPU runs it natively
    expected = "onnx-int8" if unavailable("bf16") else "bf16"
    assert expected == ("onnx-int8" if kind in ("avx2", "avx512") else "bf16")
    assert resolve_backend("auto", "cpu", record) == expected
    assert resolve_backend("auto", "cpu", gate_record(fp32=(1.0, True), int8=(1.4, False))) \
        == "fp32"
    assert resolve_backend("int8", "cpu", record) == "int8"  # an explicit choice is kept


def test_a_gate_record_from_another_cpu_kind_is_ignored(monkeypatch, caplog):
    monkeypatch.setenv(FLAGS_ENV, "avx2")
    measured_on_avx2 = gate_record(**{"fp32": (1.0, True), "onnx-int8": (2.3, True)})
    assert resolve_backend("auto", "cpu", measured_on_avx2) == "onnx-int8"
    monkeypatch.setenv(FLAGS_ENV, "avx512-vnni-bf16")  # same model name, other features
    with caplog.at_level("WARNING", logger="distilbert_catalog.backends"):
        assert resolve_backend("auto", "cpu", measured_on_avx2) == "fp32"
    assert "measured on" in caplog.text and "[avx2]" in caplog.text
    other_model = gate_record(cpu={**cpu_description(), "model": "Some Other CPU"},
                              **{"fp32": (1.0, True), "onnx-int8": (2.3, True)})
    assert resolve_backend("auto", "cpu", other_model) == "fp32"
    # records written before ISA features were named list the raw flags instead
    legacy = gate_record(cpu={"model": cpu_description()["model"], "cores": 2,
                              "simd": sorted(SIMULATED_KINDS["avx512-vnni-bf16"])},
                         **{"fp32": (1.0, True), "onnx": (1.2, True)})
    assert resolve_backend("auto", "cpu", legacy) == "onnx"
    assert resolve_backend("auto", "cpu", {"candidates": legacy["candidates"]}) == "fp32"


class ScriptedQA(type(get_task("question-answering"))):
    """The QA task with a scripted evaluation: each backend's F1 and time are set by the test,
    so the gate's verdicts can be checked exactly."""

    script = {"fp32": (80.0, 0.08, "abcde"), "int8": (79.0, 0.01, "abxyz"),
              "onnx": (80.0, 0.04, "abcde"), "onnx-int8": (79.6, 0.02, "abcdz"),
              "bf16": (80.0, 0.12, "abcde")}

    def evaluate(self, predictor, data, out_dir, settings):
        from distilbert_catalog.tasks.base import EvalResult

        f1, seconds, answers = self.script[predictor.backend]
        time.sleep(seconds)
        return EvalResult(metrics={"f1": f1}, rows=[{"id": i, "prediction": a, "no_answer_prob":
                                                     random.random()} for i, a in enumerate(answers)])


def test_gate_keeps_backends_within_the_tolerance_and_picks_the_fastest(task_models, tmp_path,
                                                                        monkeypatch):
    from distilbert_catalog.quality_gate import run_gate

    monkeypatch.setenv(FLAGS_ENV, "avx512-vnni-bf16")  # a CPU with bf16 instructions
    record = run_gate(task_models["question-answering"], ScriptedQA(), data=[{}] * 5,
                      settings={}, candidates=["int8", "onnx", "onnx-int8", "bf16"],
                      tolerance=0.5, rounds=3, onnx_dir=tmp_path)
    rows = {c["backend"]: c for c in record["candidates"]}
    assert [c["backend"] for c in record["candidates"]] == [
        "fp32", "int8", "onnx", "onnx-int8", "bf16"]
    assert rows["int8"]["quality_delta_points"] == -1.0 and not rows["int8"]["passed"]
    assert rows["int8"]["verdict"] == "lost 1.00 points (more than 0.5)"
    # as exact as fp32 but slower: no candidate at all
    assert rows["bf16"]["quality_delta_points"] == 0 and rows["bf16"]["speedup"] < 1.0
    assert not rows["bf16"]["passed"] and rows["bf16"]["verdict"].startswith("not faster than fp32")
    assert rows["onnx-int8"]["quality_delta_points"] == pytest.approx(-0.4)
    assert rows["onnx-int8"]["passed"] and rows["onnx"]["passed"] and rows["fp32"]["passed"]
    assert rows["onnx-int8"]["speedup"] > rows["onnx"]["speedup"] > 1.0
    assert record["chosen"] == "onnx-int8"  # int8 is faster still, but lost a whole point
    # answers compared example by example, scores aside
    assert {b: c["answers_changed"] for b, c in rows.items()} == {
        "fp32": 0, "int8": 3, "onnx": 0, "onnx-int8": 1, "bf16": 0}
    assert record["metric"] == "f1" and record["tolerance_points"] == 0.5
    assert record["cpu"] == cpu_description() and record["cpu"]["isa"] == [
        "avx2", "avx512", "vnni", "avx512_bf16"]
    assert record["torch_threads"] >= 1 and record["rounds"] == 3


def test_gate_records_bf16_as_unavailable_where_it_is_only_emulated(task_models, tmp_path,
                                                                     monkeypatch):
    from distilbert_catalog.quality_gate import run_gate

    monkeypatch.setenv(FLAGS_ENV, "avx2")
    record = run_gate(task_models["question-answering"], ScriptedQA(), data=[{}] * 5,
                      settings={}, candidates=["bf16", "onnx"], rounds=1, onnx_dir=tmp_path)
    assert [c["backend"] for c in record["candidates"]] == ["fp32", "onnx"]
    assert "emulate" in record["unavailable"]["bf16"] and record["cpu"]["isa"] == ["avx2"]


def test_gate_component_runs_in_a_fresh_process_and_auto_follows_it(task_models, tmp_path):
    """`distilbert-catalog run components/gate/...` as users run it; the gated MLflow model
    carries the record, its metadata names the choice, and loading it with auto uses it."""
    from distilbert_catalog.metrics_file import read_metrics
    from distilbert_catalog.inference import load_predictor
    from distilbert_catalog.modeling import mlflow_metadata

    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "distilbert_catalog.cli", "run",
         str(REPO / "components/gate/text_classification/spec.yaml"),
         "--set", f"model_name={task_models['text-classification']}",
         "--set", f"test_data={_tiny_emotion(tmp_path)}", "--set", "rounds=1",
         "--set", "candidates=int8,onnx", "--output-dir", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_metrics(out / "gate_result")
    gate = record["details"]["gate"]
    assert record["stage"] == "gate" and [c["backend"] for c in gate["candidates"]] == [
        "fp32", "int8", "onnx"]
    chosen = gate["chosen"]
    mlflow_dir = out / "mlflow_model_folder"
    assert mlflow_metadata(mlflow_dir)["metadata"]["backend_gate"]["chosen"] == chosen
    assert json.loads((mlflow_dir / "artifacts/model/backend_gate.json").read_text()) == gate
    gated, reference = load_predictor(mlflow_dir), load_predictor(mlflow_dir, backend="fp32")
    assert gated.backend == chosen and reference.backend == "fp32"
    # the real inference server serves the gated model on the backend the gate chose
    from distilbert_catalog.runner.endpoints import serve

    texts = ["what a lovely morning", "this is awful news"]
    with serve(SCORE_SCRIPT, mlflow_dir) as server:
        status, body = server.invoke({"inputs": {"input_string": texts}})
        log = server.log()
    assert status == 200, body
    expected = reference.predict([{"input_string": t} for t in texts])
    assert [a["label"] for a in body] == [a["label"] for a in expected]
    assert f"backend {chosen}" in log, log[-2000:]
    # the card of an evaluation of the gated model shows the gate's table
    import distilbert_catalog as dc
    from distilbert_catalog.cards import write_card

    dc.evaluate("text-classification", output_dir=tmp_path / "eval",
                mlflow_model_path=str(mlflow_dir), test_data=str(tmp_path / "data"))
    card = write_card(tmp_path / "card", evaluation_dir=tmp_path / "eval").read_text()
    changed = {c["backend"]: c["answers_changed"] for c in gate["candidates"]}
    assert changed["fp32"] == 0 and changed["onnx"] == 0  # exact backends change no answer
    for backend, n in changed.items():
        assert f"| `{backend}` |" in card and f"| {n} of 4 |" in card, card


def _tiny_emotion(tmp_path: Path) -> Path:
    """A few rows labelled with the tiny classifier's own labels (negative / positive)."""
    from tests.support import write_jsonl

    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"text": t, "label": lab} for t, lab in [
        ("what a lovely morning", "positive"), ("this is awful news", "negative"),
        ("i am so pleased with it", "positive"), ("everything went wrong today", "negative")]]
    write_jsonl(folder / "test.jsonl", rows)
    return folder


@pytest.mark.parametrize("kind", sorted(SIMULATED_KINDS))
def test_every_backend_runs_on_every_cpu_kind_but_bf16_and_int8_vnni_need_theirs(monkeypatch,
                                                                                kind):
    monkeypatch.setenv(FLAGS_ENV, kind)
    refused = {name: reason for name in BACKENDS if (reason := unavailable(name, "cpu"))}
    native = "bf16" in kind or kind == "amx"  # the same kinds have AVX512-VNNI
    assert list(refused) == ([] if native else ["bf16", "int8-vnni"])
