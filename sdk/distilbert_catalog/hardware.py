"""What machine this is: the CPU's name, its instruction-set features and the runtimes' versions.

Nothing here *chooses* a precision or a backend: CPU flags say which instructions exist, not
which kernels are faster (an Intel Xeon with AVX512-BF16 but no AMX runs DistilBERT in bf16
1.2-1.4x *slower* than fp32). Choices are measured (:mod:`distilbert_catalog.precision`,
:mod:`distilbert_catalog.quality_gate`); this module only says where a measurement was made, so
that a measurement made on another kind of CPU is not trusted here.

``DISTILBERT_CATALOG_CPU_FLAGS`` replaces the kernel's flag list (comma or space separated, or
one of the named kinds in :data:`SIMULATED_KINDS`), so tests can run the CPU-sensitive code as it
would run on another CPU.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any, Mapping

#: the features that decide how fast DistilBERT's kernels run, by the kernel flags that show them
ISA_FEATURES: dict[str, tuple[str, ...]] = {
    "avx2": ("avx2",),
    "avx512": ("avx512f",),
    "vnni": ("avx512_vnni", "avx_vnni"),
    "avx512_bf16": ("avx512_bf16",),
    "amx": ("amx_tile", "amx_bf16", "amx_int8"),
}
#: flag sets of the CPU kinds the project runs on, for DISTILBERT_CATALOG_CPU_FLAGS
SIMULATED_KINDS: dict[str, frozenset[str]] = {
    "avx2": frozenset({"sse4_2", "avx", "avx2", "fma"}),
    "avx512": frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"}),
    "avx512-vnni-bf16": frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                   "avx512vl", "avx512_vnni", "avx512_bf16"}),
    "amx": frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                      "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}),
}
FLAGS_ENV = "DISTILBERT_CATALOG_CPU_FLAGS"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpuinfo_field(*names: str) -> str | None:
    for line in _cpuinfo().splitlines():
        if line.startswith(names):
            return line.split(":", 1)[1].strip()
    return None


def cpu_flags() -> frozenset[str]:
    """CPU feature flags as the kernel reports them, or as ``DISTILBERT_CATALOG_CPU_FLAGS`` says."""
    simulated = os.environ.get(FLAGS_ENV)
    if simulated is not None:
        return SIMULATED_KINDS.get(simulated.strip()) or frozenset(
            simulated.replace(",", " ").split())
    return _kernel_flags()


@functools.lru_cache(maxsize=1)
def _kernel_flags() -> frozenset[str]:
    return frozenset((_cpuinfo_field("flags", "Features") or "").split())


def isa_features(flags: frozenset[str] | None = None) -> list[str]:
    """The :data:`ISA_FEATURES` this CPU has, in a fixed order (e.g. ``["avx2", "avx512"]``)."""
    flags = cpu_flags() if flags is None else flags
    return [name for name, shown_by in ISA_FEATURES.items() if flags & set(shown_by)]


def simulated() -> bool:
    return os.environ.get(FLAGS_ENV) is not None


def cpu_model() -> str:
    name = _cpuinfo_field("model name") or platform.processor() or platform.machine()
    return f"{name} (simulated: {os.environ[FLAGS_ENV]})" if simulated() else name


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_description() -> dict[str, Any]:
    """Where a measurement ran: CPU model, ISA features, cores, runtimes and thread count.

    Every gate record and benchmark result carries this, so a figure is never read as if it had
    been measured on another machine.
    """
    import torch

    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {"model": cpu_model(), "isa": isa_features(), "cores": usable_cores(),
            "torch": torch.__version__, "onnxruntime": ort_version,
            "threads": torch.get_num_threads()}


def cpu_kind(description: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """What must match for a speed measurement to hold elsewhere: the CPU model and its features.

    Older gate records list raw flags under ``simd`` instead of ``isa``; both are understood.
    """
    isa = description.get("isa")
    if isa is None:
        isa = isa_features(frozenset(description.get("simd", ())))
    return description.get("model", "?"), tuple(isa)


def same_cpu_kind(description: Mapping[str, Any] | None) -> bool:
    """Whether ``description`` (a recorded :func:`cpu_description`) is this machine's kind of CPU."""
    return description is not None and cpu_kind(description) == cpu_kind(cpu_description())


def describe(description: Mapping[str, Any]) -> str:
    model, isa = cpu_kind(description)
    return f"{model} [{', '.join(isa) or 'no AVX2'}]"
