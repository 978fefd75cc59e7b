"""Quantisation-aware fine-tuning (distilbert_catalog.qat): the simulation must round exactly as
the onnx-int8 backend's kernels do, let gradients through, and leave an ordinary float model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import distilbert_catalog as dc
from distilbert_catalog.qat import (FakeQuantLinear, fake_quantize_activation,
                                    fake_quantize_weight, quantization_aware)
from tests.support import EMOTION_LABELS


def onnx_int8_linear(weight: torch.Tensor, folder) -> "callable":
    """One MatMul graph put through the onnx-int8 backend's own quantiser, run by ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from distilbert_catalog.backends import quantize_int8

    k, n = weight.shape[1], weight.shape[0]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", n])],
        [numpy_helper.from_array(weight.T.contiguous().numpy(), "w")])
    source, target = folder / "fp32.onnx", folder / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=9), source)
    quantize_int8(source, target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def test_fake_quantisation_rounds_as_the_onnx_int8_backend_does(pretrained_model, tmp_path):
    """Every Linear layer of the pretrained encoder, on its real inputs for two sentences."""
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(pretrained_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(pretrained_model)
    inputs = {}
    for name, layer in encoder.named_modules():
        if type(layer) is torch.nn.Linear:
            layer.register_forward_pre_hook(
                lambda _, args, name=name: inputs.__setitem__(name, args[0].flatten(0, -2)))
    batch = tokenizer(["The committee postponed the vote until spring, citing missing figures.",
                       "Why do cats purr?"], padding=True, return_tensors="pt")
    with torch.no_grad():
        encoder(**batch)
    assert len(inputs) == 6 * encoder.config.n_layers
    for name, x in inputs.items():
        weight = encoder.get_submodule(name).weight.detach()
        reference = x @ weight.T
        simulated = F.linear(fake_quantize_activation(x), fake_quantize_weight(weight))
        served = onnx_int8_linear(weight, tmp_path)(x)
        assert (simulated - reference).abs().mean() > 1e-3, name  # int8 really rounds here ...
        assert (simulated - served).abs().max() < 2e-3 * reference.abs().max(), name  # the same way


def test_gradients_pass_straight_through_the_rounding():
    x = torch.randn(8, 16, requires_grad=True)
    weight = torch.randn(4, 16, requires_grad=True)
    out = F.linear(fake_quantize_activation(x), fake_quantize_weight(weight))
    out.backward(torch.ones_like(out))
    # straight-through: the rounding passes gradients on as if it were the identity
    rounded_weight = fake_quantize_weight(weight.detach())
    rounded_x = fake_quantize_activation(x.detach())
    assert torch.allclose(x.grad, rounded_weight.sum(0).expand(8, 16), atol=1e-6)
    assert torch.allclose(weight.grad, rounded_x.sum(0).expand(4, 16), atol=1e-5)
    assert not torch.allclose(rounded_weight, weight.detach())  # and it did round


def test_quantization_aware_switches_the_encoder_only_and_restores_it(tiny_model):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3).eval()
    ids = torch.randint(5, model.config.vocab_size, (2, 9),
                        generator=torch.Generator().manual_seed(1))
    keys = list(model.state_dict())
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with quantization_aware(model.base_model) as switched:
            during = model(input_ids=ids).logits
            assert isinstance(model.base_model.transformer.layer[0].ffn.lin1, FakeQuantLinear)
            assert type(model.classifier) is torch.nn.Linear  # the head is not the encoder
            assert list(model.state_dict()) == keys
        after = model(input_ids=ids).logits
    assert switched == 6 * model.config.n_layers
    assert not torch.equal(before, during)
    assert torch.equal(before, after)
    assert not any(isinstance(m, FakeQuantLinear) for m in model.modules())


def test_quantization_aware_fine_tuning_saves_a_plain_float_model(tiny_model, emotion_dir,
                                                                   tmp_path):
    result = dc.finetune("text-classification", output_dir=tmp_path, model_name=str(tiny_model),
                         train_data=str(emotion_dir), label_names=EMOTION_LABELS, max_steps=3,
                         per_device_train_batch_size=8, quantization_aware=True)
    record = json.loads((result.metrics_dir / "metrics.json").read_text())
    assert record["config"]["quantization_aware"] is True
    predictor = dc.load_model(str(result.mlflow_model_dir), backend="fp32")
    assert not any(isinstance(m, FakeQuantLinear) for m in predictor.model.modules())
    answers = predictor.predict([{"input_string": "i am so happy today"},
                                 {"input_string": "this is awful"}])
    assert [a["label"] in EMOTION_LABELS.split(",") for a in answers] == [True, True]


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 6)])
def test_a_constant_or_all_positive_tensor_keeps_zero_exact(shape):
    """Zero is always a level (the range always holds 0), so padding and ReLU zeros stay zero."""
    x = torch.rand(shape) + 1.0
    x[0] = 0.0
    out = fake_quantize_activation(x)
    assert torch.all(out[0] == 0)
    assert np.isfinite(fake_quantize_activation(torch.zeros(shape)).numpy()).all()
