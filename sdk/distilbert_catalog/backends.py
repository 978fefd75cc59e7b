"""Inference backends: how the encoder of a loaded model runs.

Every catalog head (classifier, span scorer, tagger, masked-LM head) is one or two small layers;
well over 95% of a forward pass is the transformer encoder, ``model.base_model``. A backend
replaces that encoder and leaves the head and the task code as they are, so every task runs on
every backend unchanged.

=============  =====================================================================  ========
backend        what runs the encoder                                                  exact
=============  =====================================================================  ========
``fp32``       PyTorch, float32 (the reference)                                       yes
``bf16``       PyTorch, bfloat16: only where the hardware has it (CUDA, AVX512-BF16,  no
               AMX), and faster only where the gate measures it so (AVX512-BF16
               without AMX ran 1.2-1.4x slower than fp32)
``int8``       PyTorch dynamic int8 on the encoder's Linear layers: per-channel        no
               8-bit weights, 7-bit inputs (saturation-free on any x86 CPU)
``int8-vnni``  the same with 8-bit inputs, only where the CPU has AVX512-VNNI        no
               (see quantize_torch_int8)
``onnx``       ONNX Runtime, float32, with its transformer fusions (attention,        yes
               bias-GELU, embeddings; not skip-LayerNorm, see SLOW_FUSIONS)
``onnx-int8``  the fused ONNX graph with per-channel dynamic int8 weights on 7 bits  no
               (see quantize_int8)
=============  =====================================================================  ========

"exact" backends give fp32's numbers up to float rounding (checked at export: hidden states
within ``EXPORT_TOLERANCE``); the others trade accuracy for speed and are only chosen by ``auto``
once :mod:`distilbert_catalog.quality_gate` has measured them on the task's evaluation data.

``auto`` picks, among the backends the model's gate record says passed (at most ``tolerance``
points lost *and* faster than fp32), the fastest one available on this machine. Nothing is chosen
from CPU flags: without a gate record, or with one measured on another kind of CPU (model or ISA
features differ, see :mod:`distilbert_catalog.hardware`), ``auto`` serves the exact reference,
fp32. The ONNX graph is exported once per model, into the MLflow model by
the gate or into the cache (``DISTILBERT_CATALOG_CACHE``) for a plain model folder.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput

from .defaults import cache_root
from .errors import CatalogError
from .hardware import cpu_description, cpu_flags, describe, same_cpu_kind
from .precision import BACKEND_CHOICES, BACKENDS, bf16_unavailable

log = logging.getLogger(__name__)

Batch = Mapping[str, torch.Tensor]
ForwardFn = Callable[[Batch], Any]

#: the gate record a gated model folder carries (:mod:`distilbert_catalog.quality_gate` writes it)
GATE_FILE = "backend_gate.json"
#: the folder of a gated model that holds its exported ONNX graphs
ONNX_DIR = "onnx"


def read_gate_record(model_folder: str | Path) -> dict | None:
    """The quality-gate record saved with a model folder, or None when it was never gated."""
    path = Path(model_folder) / GATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None

AUTO = "auto"
#: the exact reference every other backend is measured against, and what ``auto`` serves unmeasured
REFERENCE = "fp32"
CHOICES = BACKEND_CHOICES
EXACT = frozenset({"fp32", "onnx"})
#: largest |hidden state| difference an exported fp32 graph may show against PyTorch
EXPORT_TOLERANCE = 1e-3
ONNX_FILES = {"onnx": "encoder.onnx", "onnx-int8": "encoder-int8.onnx"}
ONNX_INPUTS = ("input_ids", "attention_mask")
#: fusions left out of the graph: ONNX Runtime 1.31's SkipLayerNormalization kernel ran 6-8x
#: slower than the Add and LayerNormalization it replaces on a 2-core AVX2 EPYC (5.2 vs 0.8 ms for
#: 1,920 tokens, 1 thread); unfused, the whole int8 encoder ran ~1.1x faster
SLOW_FUSIONS = ("SkipLayerNormFusion",)
#: bump when the exported graphs change, so cached exports of older releases are not reused
EXPORT_VERSION = 2


def unavailable(name: str, device: str | torch.device = "cpu") -> str | None:
    """Why backend ``name`` cannot run on ``device`` here, or None when it can."""
    if name not in BACKENDS:
        raise CatalogError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    device = torch.device(device)
    if name == "bf16":
        return bf16_unavailable(device)
    if name == "fp32":
        return None
    if device.type != "cpu":
        return f"{name} is a CPU backend; the model runs on {device.type}"
    if name in TORCH_INT8:
        engines = torch.backends.quantized.supported_engines
        if not {"fbgemm", "x86", "qnnpack"} & set(engines):
            return f"this PyTorch build has no int8 engine (supported: {engines})"
        if name == "int8-vnni" and not ({"fbgemm", "x86"} & set(engines)
                                        and "avx512_vnni" in cpu_flags()):
            return ("this CPU has no AVX512-VNNI: its int8 kernels add products in pairs into 16 "
                    "bits, which 8-bit inputs would saturate; use int8 or onnx-int8")
        return None
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def resolve_backend(requested: str = AUTO, device: str | torch.device = "cpu",
                    gate: Mapping[str, Any] | None = None) -> str:
    """The backend to run: ``requested`` itself, or for ``auto`` the gate's fastest that passed.

    ``gate`` is a model's gate record (:func:`distilbert_catalog.quality_gate.run_gate`), if it
    has one; a record measured on another kind of CPU is ignored (with a log line): its speeds
    and even its int8 answers need not hold here.
    """
    if requested not in CHOICES:
        raise CatalogError(f"unknown backend {requested!r}; choose one of {', '.join(CHOICES)}")
    if requested != AUTO:
        reason = unavailable(requested, device)
        if reason:
            raise CatalogError(f"backend {requested} cannot run here: {reason}")
        return requested
    if gate and not same_cpu_kind(gate.get("cpu")):
        log.warning("ignoring the quality-gate record: it was measured on %s, this is %s; "
                    "serving the exact fp32 backend (run the gate on this machine to serve a "
                    "faster one)", describe(gate["cpu"]) if gate.get("cpu") else "an unknown CPU",
                    describe(cpu_description()))
        gate = None
    if gate:
        passed = [c for c in gate["candidates"]
                  if c["passed"] and unavailable(c["backend"], device) is None]
        if passed:
            return max(passed, key=lambda c: c["speedup"])["backend"]
    return REFERENCE


# --- applying a backend ------------------------------------------------------------------------
def torch_forward(model: torch.nn.Module) -> ForwardFn:
    """The default forward pass: eager PyTorch, weights already in the chosen dtype, no autograd."""

    def forward(batch: Batch):
        with torch.inference_mode():
            return model(**batch)

    return forward


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def set_encoder(model: torch.nn.Module, encoder: torch.nn.Module) -> None:
    setattr(model, model.base_model_prefix, encoder)


def apply_backend(model: torch.nn.Module, name: str, *, onnx_dir: str | Path | None = None,
                  threads: int | None = None) -> torch.nn.Module:
    """Make ``model`` (an fp32 model in eval mode) run its encoder on backend ``name``.

    ``onnx_dir`` holds (or receives) the exported graphs of an ONNX backend; by default a cache
    folder keyed by the model's weights.
    """
    if name == "fp32":
        return model.float()
    if name == "bf16":
        return model.to(torch.bfloat16)
    if name in TORCH_INT8:
        set_encoder(model, quantize_torch_int8(model.base_model,
                                               full_range_inputs=name == "int8-vnni"))
        return own_memory(model)
    if name in ONNX_FILES:
        folder = Path(onnx_dir) if onnx_dir else onnx_cache_dir(model)
        path = folder / ONNX_FILES[name]
        if not path.exists() and name == "onnx-int8" and (folder / ONNX_FILES["onnx"]).exists():
            quantize_int8(folder / ONNX_FILES["onnx"], path)  # the fused graph is already there
        elif not path.exists():
            export_onnx(model, folder, int8=name == "onnx-int8")
        set_encoder(model, OnnxEncoder(path, threads=threads))
        return own_memory(model)
    raise CatalogError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def own_memory(model: torch.nn.Module) -> torch.nn.Module:
    """Copy what is left of the PyTorch model (the head) out of the memory-mapped weights file.

    Loaded tensors are views of the mapped safetensors file; while the head's views live, the
    whole file (the replaced fp32 encoder included: about 255 MiB for a base-sized model) stays
    resident in the server.
    """
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.data = tensor.data.clone()
    return model


#: the PyTorch int8 backends: name -> whether inputs use all 8 bits (see quantize_torch_int8)
TORCH_INT8 = {"int8": False, "int8-vnni": True}


class FullRangeLinear(torch.ao.nn.quantized.dynamic.Linear):
    """PyTorch's dynamic int8 Linear with its input quantised on 8 bits (0..255), not 7.

    ``torch.ao.nn.quantized.dynamic.Linear`` always asks fbgemm for 7-bit inputs
    (``reduce_range=True``) so that AVX2's ``vpmaddubsw`` pair sums (2 x 255 x 127 > 32,767)
    cannot saturate; AVX512-VNNI's ``vpdpbusd`` adds four products straight into 32 bits, so on
    such a CPU 8-bit inputs are exact and halve the input rounding error.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(
            x, self._packed_params._packed_params, reduce_range=False).to(x.dtype)


def quantize_torch_int8(encoder: torch.nn.Module, *, full_range_inputs: bool) -> torch.nn.Module:
    """The encoder with every Linear layer in PyTorch dynamic int8 (fbgemm).

    Weights are int8 with one scale per output channel (PyTorch's default is one scale per
    layer: 1.5x the error in the pretrained encoder's hidden states); each call quantises its
    input to uint8 with one scale for the whole batch, on 7 bits, or on 8 with
    ``full_range_inputs`` (only exact on AVX512-VNNI; see :class:`FullRangeLinear`).
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        quantized = quantize_dynamic(encoder, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                     dtype=torch.qint8)
    if full_range_inputs:
        for layer in quantized.modules():
            if type(layer) is torch.ao.nn.quantized.dynamic.Linear:
                layer.__class__ = FullRangeLinear
    return quantized


class OnnxEncoder(torch.nn.Module):
    """An ONNX Runtime session standing in for a Hugging Face encoder inside its model.

    It takes the encoder's keyword arguments and returns its ``last_hidden_state``, so the
    model's own head and the task code run unchanged around it.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        # the same intra-op thread count as PyTorch's (OMP_NUM_THREADS, else the cores), so one
        # setting governs both runtimes and batch workers that split the cores stay split
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"],
                                            disabled_optimizers=list(SLOW_FUSIONS))

    def forward(self, input_ids=None, attention_mask=None, **unused):
        if input_ids is None:
            raise ValueError("the ONNX encoder takes input_ids (not inputs_embeds)")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        wanted = [k for k in ("output_attentions", "output_hidden_states") if unused.get(k)]
        if wanted:
            raise ValueError(f"the ONNX encoder returns the last hidden state only, not {wanted}")
        feeds = {"input_ids": input_ids.cpu().numpy().astype(np.int64),
                 "attention_mask": attention_mask.cpu().numpy().astype(np.int64)}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))


# --- exporting ---------------------------------------------------------------------------------
def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256(type(model.base_model).__name__.encode())
    for name, tensor in model.base_model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def onnx_cache_dir(model: torch.nn.Module) -> Path:
    import onnxruntime

    return cache_root() / "onnx" / (f"{weights_digest(model)}-ort{onnxruntime.__version__}"
                                    f"-v{EXPORT_VERSION}")


def _config_shape(config) -> tuple[int, int]:
    heads = getattr(config, "n_heads", None) or config.num_attention_heads
    hidden = getattr(config, "dim", None) or config.hidden_size
    return heads, hidden


def export_onnx(model: torch.nn.Module, folder: str | Path, *, int8: bool) -> Path:
    """Export ``model``'s encoder to ONNX with ONNX Runtime's transformer fusions (and int8).

    Writes ``encoder.onnx`` (fp32, fused) and, with ``int8``, ``encoder-int8.onnx`` into
    ``folder`` atomically; the fp32 graph must reproduce PyTorch's hidden states within
    :data:`EXPORT_TOLERANCE` on a padded batch, or the export is refused.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    if model.config.model_type != "distilbert":
        raise CatalogError(f"the ONNX backends export DistilBERT encoders; this model is "
                           f"{model.config.model_type!r}: use backend fp32 or int8")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = copy.deepcopy(model.base_model).float().eval()
    # the classic attention graph is the one ONNX Runtime fuses into its Attention kernel
    encoder.set_attn_implementation("eager")
    # a padded batch of arbitrary in-vocabulary ids: the export traces shapes, not meaning
    ids = torch.randint(1, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    log.warning("exporting the encoder to ONNX in %s (once per model)", folder)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        raw, fused = Path(tmp, "raw.onnx"), Path(tmp, ONNX_FILES["onnx"])
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(encoder, (ids, mask), str(raw), input_names=list(ONNX_INPUTS),
                              output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                              dynamic_axes={name: {0: "batch", 1: "sequence"}
                                            for name in (*ONNX_INPUTS, "last_hidden_state")})
            reference = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        heads, hidden = _config_shape(model.config)
        fusions = FusionOptions("bert")
        fusions.enable_skip_layer_norm = fusions.enable_bias_skip_layer_norm = False  # slow
        optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden,
                       optimization_options=fusions).save_model_to_file(str(fused))
        check_export(fused, ids, mask, reference)
        written = [fused]
        if int8:
            written.append(quantize_int8(fused, Path(tmp, ONNX_FILES["onnx-int8"])))
        for path in written:
            os.replace(path, folder / path.name)
    return folder


def check_export(path: Path, ids: torch.Tensor, mask: torch.Tensor,
                 reference: torch.Tensor) -> None:
    hidden = OnnxEncoder(path, threads=1)(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.bool()
    worst = float((hidden[keep] - reference[keep]).abs().max())
    if not worst <= EXPORT_TOLERANCE:
        raise RuntimeError(f"the exported ONNX encoder differs from PyTorch by {worst:.2e} "
                           f"(> {EXPORT_TOLERANCE}); refusing to use it")


def quantize_int8(source: Path, target: Path) -> Path:
    """Per-channel dynamic int8 weights for the fused graph's MatMul and Attention nodes.

    Weights use 7 bits (-64..64, ``reduce_range``): x86 CPUs without VNNI multiply uint8 inputs
    by int8 weights with ``vpmaddubsw``, which adds products in pairs into 16 bits and saturates
    once two of them pass 32,767 (255 x 127 x 2 = 64,770). On the pretrained DistilBERT that
    clipped outputs of the attention projections by up to 2 (of 9), four times the error of
    rounding; with 7-bit weights a pair sum stays below 255 x 64 x 2 = 32,640, so every CPU
    computes the same, saturation-free answer, the one :mod:`distilbert_catalog.qat` simulates.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    advice = _DropMessage("pre-processing before quantization")  # advice for image models
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.getLogger().removeFilter(advice)
    return target


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def copy_onnx_files(source: Path, target: Path, backends) -> list[str]:
    """Copy the graphs that ``backends`` need from ``source`` into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    names = [ONNX_FILES[b] for b in backends if b in ONNX_FILES]
    for name in names:
        shutil.copy2(source / name, target / name)
    return names
