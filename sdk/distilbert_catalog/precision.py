"""Training precision, chosen by measuring the model on this machine, and the backends' names.

bf16 halves the bytes a model moves, but whether it trains faster depends on the kernels, not on
the instruction set: on an AVX2-only CPU PyTorch emulates bf16 (about 7x slower than fp32); on an
Intel Xeon with AVX512-BF16 but no AMX, DistilBERT trained 1.3-1.4x *slower* in bf16; with AMX or
a recent GPU it is faster. So ``precision: auto`` times a few forward/backward steps of the actual
model on an actual training batch, fp32 and bf16 interleaved, and trains in bf16 only when it was
at least :data:`BF16_MIN_SPEEDUP` times faster. The verdict is cached per CPU kind, device, torch
version, thread count and model shape (``precision.json`` in the catalog's cache), unless the
machine was busy while it was measured (:func:`machine_busy`): then it serves that run only.

The inference backends' names also live here, importable without loading PyTorch, so argument
parsing and spec generation stay light (:mod:`distilbert_catalog.backends` runs them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from .hardware import cpu_description, cpu_flags, cpu_kind, usable_cores

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
#: inference backends (see distilbert_catalog.backends); ``auto`` chooses among them
BACKENDS = ("fp32", "bf16", "int8", "int8-vnni", "onnx", "onnx-int8")
BACKEND_CHOICES = ("auto", *BACKENDS)
_NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: how much faster a bf16 training step must be (median fp32 / median bf16) for auto to pick it:
#: a clear margin, well above the few per cent two identical runs differ by on a shared machine
BF16_MIN_SPEEDUP = 1.15
#: timed forward/backward steps per precision (interleaved), after one untimed warm-up each
MEASURE_STEPS = 3
CACHE_FILE = "precision.json"


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU has bf16 instructions at all (not whether they are faster: measure that)."""
    return bool(_NATIVE_BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))


def bf16_unavailable(device) -> str | None:
    """Why bf16 cannot run natively on ``device``, or None when it can (speed is not implied)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bf16 support"
    return None if cpu_has_native_bf16() else (
        "this CPU has no native bf16 (AVX512-BF16 or AMX); PyTorch would emulate it, about 7x "
        "slower than fp32")


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a fine-tuning run uses, and why (recorded in metrics.json and the card)."""

    precision: str
    reason: str
    measurement: Mapping[str, Any] | None = field(default=None)

    def as_config(self) -> dict[str, Any]:
        return {"precision_resolved": self.precision, "precision_reason": self.reason,
                "precision_measurement": dict(self.measurement) if self.measurement else None}


def choose_training_precision(requested: str, model, batch: Mapping[str, Any], device) -> \
        PrecisionChoice:
    """The precision to fine-tune ``model`` in: ``requested`` itself, or for ``auto`` measured.

    ``batch`` is one collated training batch (what the Trainer's first step sees).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {requested!r}")
    if requested != "auto":
        return PrecisionChoice(requested, f"{requested} was requested")
    missing = bf16_unavailable(device)
    if missing:
        return PrecisionChoice("fp32", f"auto: fp32, not measured: {missing}")
    key = _cache_key(model, batch, device)
    cache = _read_cache()
    measurement = cache.get(key)
    if measurement is None:
        measurement = measure_training_step(model, batch, device)
        busy = machine_busy()
        if busy:  # other work skewed the timings: use them for this run, never remember them
            log.warning("training precision: not caching the measurement, %s", busy)
        else:
            cache[key] = measurement
            _write_cache(cache)
    speedup = measurement["speedup"]
    chosen = "bf16" if speedup >= BF16_MIN_SPEEDUP else "fp32"
    reason = (f"auto: a bf16 training step ran {speedup:.2f}x as fast as fp32 on this machine "
              f"({'at least' if chosen == 'bf16' else 'below'} the {BF16_MIN_SPEEDUP}x bf16 "
              f"needs), so {chosen}")
    log.warning("training precision %s", reason)
    return PrecisionChoice(chosen, reason, measurement)


def measure_training_step(model, batch: Mapping[str, Any], device,
                          steps: int = MEASURE_STEPS) -> dict[str, Any]:
    """Median seconds of a forward/backward step in fp32 and under bf16 autocast, interleaved.

    bf16 runs as the Trainer runs it (``torch.autocast`` over fp32 weights). No weight changes
    (gradients are dropped), and the random state is restored, so a run that measured and one
    that read the cache train identically.
    """
    import torch

    device = torch.device(device)
    model = model.to(device)
    inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    was_training = model.training
    model.train()

    def step(precision: str) -> float:
        autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())
        _synchronize(device)
        started = time.perf_counter()
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
        _synchronize(device)
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for precision in seconds:  # warm-up: first calls allocate and pick kernels
            step(precision)
        for round_ in range(steps):
            order = list(seconds) if round_ % 2 == 0 else list(reversed(seconds))
            for precision in order:
                seconds[precision].append(step(precision))
    model.train(was_training)
    fp32, bf16 = (statistics.median(seconds[p]) for p in ("fp32", "bf16"))
    return {"fp32_step_seconds": round(fp32, 5), "bf16_step_seconds": round(bf16, 5),
            "speedup": round(fp32 / bf16, 3), "steps": steps,
            "batch_shape": list(inputs["input_ids"].shape), "cpu": cpu_description()}


def machine_busy() -> str | None:
    """Why timings taken now would not stand for this machine (more runnable work than cores),
    or None. On two shared cores, a tiny model's fp32 step once timed 0.28 s against 0.015 s
    quiet (other processes' thread pools spinning at barriers): such a verdict must not be kept."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cores = usable_cores()
    return f"the machine was busy (load {load:.1f} on {cores} cores)" if load > cores else None


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cache_key(model, batch: Mapping[str, Any], device) -> str:
    import torch

    config = model.config
    shape = [getattr(config, name, None) for name in ("model_type", "dim", "hidden_size",
                                                       "n_layers", "num_hidden_layers")]
    where = (torch.cuda.get_device_name(device) if torch.device(device).type == "cuda"
             else cpu_kind(cpu_description()))
    rows, width = batch["input_ids"].shape
    # widths bucketed to powers of two: the same model on similar batches shares one verdict
    bucket = 1 << max(0, int(width) - 1).bit_length()
    return json.dumps([where, torch.__version__, torch.get_num_threads(),
                       type(model).__name__, shape, int(rows), bucket])


def _cache_path():
    from .defaults import cache_root

    return cache_root() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(cache: Mapping[str, Any]) -> None:
    path = _cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(cache, indent=1) + "\n")
    os.replace(temporary, path)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
