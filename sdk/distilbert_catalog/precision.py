"""Choose the numeric precision for training and inference from the hardware at run time.

bf16 is only fast where the hardware does it natively: CUDA GPUs with bf16 support, and CPUs with
AVX512-BF16 or AMX. On an AVX2-only CPU PyTorch emulates bf16 and DistilBERT runs about 7x slower
than fp32, so ``auto`` picks fp32 there.

Inference goes further: a *backend* (:mod:`distilbert_catalog.backends`) is a precision plus the
runtime that executes the encoder. Their names live here, importable without loading PyTorch, so
argument parsing and spec generation stay light.
"""

from __future__ import annotations

import functools
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16")
#: inference backends (see distilbert_catalog.backends); ``auto`` chooses among them
BACKENDS = ("fp32", "bf16", "int8", "onnx", "onnx-int8")
BACKEND_CHOICES = ("auto", *BACKENDS)
_NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags as reported by the kernel (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    return bool(_NATIVE_BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))


def resolve_precision(precision: str = "auto", device=None,
                      flags: frozenset[str] | None = None) -> str:
    """Return ``"fp32"`` or ``"bf16"`` for ``precision`` in ``auto|fp32|bf16`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "auto":
        return precision
    import torch

    device = torch.device(device or default_device())
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16(flags) else "fp32"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
