"""Quantisation-aware fine-tuning: train the model that the int8 backends will serve.

The ``onnx-int8`` backend (:mod:`distilbert_catalog.backends`) runs every Linear layer of the
encoder (the attention projections inside its fused attention too) with per-output-channel
symmetric 7-bit weights and its input quantised on the fly to uint8 with one scale per call (the
min-max of the whole padded batch); PyTorch's ``int8`` backend rounds otherwise (7-bit inputs,
8-bit weights with one scale per layer). On a model fine-tuned in float, those rounding errors
flip a few near-tie answers (docs/performance.md, QA benchmark). With ``quantization_aware`` on,
fine-tuning runs the encoder's Linear layers through ``onnx-int8``'s rounding (*fake
quantisation*: quantise, then dequantise, in float), with gradients passed straight through the
rounding, so the weights it finds are ones whose int8 answers are its float answers. (The int8
word-embedding table of ``onnx-int8`` is not simulated.) What is saved is still an ordinary float
model: fp32 serves it exactly, and the gate measures the int8 backends against that fp32, as for
any model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F

#: symmetric weights on -64..64 (7 bits), as the onnx-int8 backend quantises them (see
#: backends.quantize_int8: 8-bit weights saturate AVX2's 16-bit pair sums)
WEIGHT_LEVELS = 64
#: activations: asymmetric uint8 over [min(x, 0), max(x, 0)], as DynamicQuantizeLinear does
ACTIVATION_MAX = 255


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` rounded to the levels -64..64, one symmetric scale per output channel (row)."""
    with torch.no_grad():
        scale = (weight.abs().amax(dim=1) / WEIGHT_LEVELS).clamp_min(1e-12).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -WEIGHT_LEVELS,
                                                  WEIGHT_LEVELS)


def fake_quantize_activation(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to uint8 with one scale and zero point for the whole tensor (batch)."""
    with torch.no_grad():
        low, high = x.min().clamp(max=0), x.max().clamp(min=0)
        scale = ((high - low) / ACTIVATION_MAX).clamp_min(1e-12).float().reshape(1)
        zero = torch.round(-low / scale).clamp(0, ACTIVATION_MAX).to(torch.int32).reshape(1)
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, ACTIVATION_MAX)


class FakeQuantLinear(torch.nn.Linear):
    """A Linear layer computing with int8-rounded weights and input; same parameters and state
    dict as :class:`torch.nn.Linear`, so checkpoints and saved models are unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(fake_quantize_activation(x), fake_quantize_weight(self.weight), self.bias)


@contextmanager
def quantization_aware(encoder: torch.nn.Module) -> Iterator[int]:
    """Within the block, every ``nn.Linear`` of ``encoder`` computes as the int8 backends do.

    Yields how many layers were switched; they are plain Linear layers again afterwards.
    """
    layers = [m for m in encoder.modules() if type(m) is torch.nn.Linear]
    for layer in layers:
        layer.__class__ = FakeQuantLinear
    try:
        yield len(layers)
    finally:
        for layer in layers:
            layer.__class__ = torch.nn.Linear
