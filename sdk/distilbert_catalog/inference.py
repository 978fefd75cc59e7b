"""Batched, length-sorted inference shared by every task.

A :class:`Predictor` owns one model and tokenizer for the life of a process. Tasks turn requests
into tokenised *features* (one dict of token lists each), and :meth:`Predictor.run` sorts them by
length, cuts the sorted features into batches with as little padding as pays
(:func:`plan_batches`), pads each batch only to its own longest feature, runs the forward pass and
gives back one result per feature in the original order. The forward pass is a single attribute,
:attr:`Predictor.forward_fn`; the encoder inside it runs on the backend chosen at load time
(:mod:`distilbert_catalog.backends`: fp32, bf16, int8, ONNX Runtime fp32 or int8).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer

from .backends import (AUTO, ONNX_DIR, Batch, ForwardFn, apply_backend, read_gate_record,
                       resolve_backend)
from .defaults import INFERENCE_BATCH_SIZE
from .modeling import resolve_model_source
from .precision import default_device
from .tasks import get_task, task_for_config

# Splits a batch's model output into one numpy result per row, given each row's unpadded length.
ExtractFn = Callable[[Any, Batch, Sequence[int]], list]


#: what one more forward call costs, in padded tokens' worth of compute: measured on a 2-core AVX2
#: CPU, 384-wide model (fp32: ~28 tokens, ONNX Runtime int8: ~4); see plan_batches
CALL_COST_TOKENS = 32
#: most padded tokens (rows x width) in one batch: bounds the attention buffers (rows x heads x
#: width^2); on CPU a token costs least in batches of ~128 to ~2048 tokens (more: cache misses)
MAX_BATCH_TOKENS = 2048


def plan_batches(lengths: Sequence[int], max_rows: int, max_tokens: int = MAX_BATCH_TOKENS,
                 call_cost: int = CALL_COST_TOKENS) -> list[range]:
    """Cut ascending ``lengths`` into consecutive batches of least total cost.

    A batch of ``n`` rows padded to its longest row ``w`` costs ``n * w + call_cost`` (padded
    tokens plus the fixed cost of a forward call); a batch holds at most ``max_rows`` rows and, if
    it has more than one row, at most ``max_tokens`` padded tokens. Fixed-size batches of sorted
    rows still pad short rows to long ones wherever lengths spread (a 32-row batch of QA windows
    from 88 to 123 tokens, then one from 128 to 236); this dynamic programme splits a batch exactly
    where the padding saved outweighs one more call. O(len(lengths) * max_rows).
    """
    best = [0.0] + [math.inf] * len(lengths)  # best[i]: least cost of the first i rows
    cut = [0] * (len(lengths) + 1)  # cut[i]: where the last batch of that best plan begins
    for end in range(1, len(lengths) + 1):
        width = lengths[end - 1]
        for begin in range(end - 1, max(0, end - max_rows) - 1, -1):
            rows = end - begin
            if rows > 1 and rows * width > max_tokens:
                break
            cost = best[begin] + call_cost + rows * width
            if cost < best[end]:
                best[end], cut[end] = cost, begin
    batches, end = [], len(lengths)
    while end:
        batches.append(range(cut[end], end))
        end = cut[end]
    return batches[::-1]


class Predictor:
    """A model, its tokenizer and its task, loaded once and used for batched inference."""

    def __init__(self, model, tokenizer, task, *, backend: str = AUTO,
                 batch_size: int = INFERENCE_BATCH_SIZE,
                 device: str | None = None, gate: Mapping[str, Any] | None = None,
                 onnx_dir=None):
        """``backend``: a name from :data:`~distilbert_catalog.backends.CHOICES`; ``auto``
        follows ``gate`` (the model's gate record, if any). ``onnx_dir``: where the model's
        exported ONNX graphs are (default: the cache)."""
        self.device = torch.device(device or default_device())
        self.backend = resolve_backend(backend, self.device, gate)
        self.gate = gate
        self.model = apply_backend(model.to(self.device).eval(), self.backend, onnx_dir=onnx_dir)
        self.tokenizer = tokenizer
        self.task = task
        self.batch_size = batch_size
        self.forward_fn: ForwardFn = task.forward_fn(self.model, tokenizer)
        self.model_input_names = set(tokenizer.model_input_names)

    def run(self, features: Sequence[Mapping[str, list]], extract: ExtractFn,
            carry: Sequence[str] = ()) -> list:
        """Run ``features`` through the model in length-sorted, per-batch padded batches.

        ``carry`` names feature keys that are not model inputs (e.g. the gold token of a masked
        copy) but that ``extract`` needs: after the forward pass they are added to the batch it
        gets, as one plain list per key in the batch's row order, never sent to the model.
        """
        lengths = [len(f["input_ids"]) for f in features]
        order = np.argsort(lengths, kind="stable")
        results: list = [None] * len(features)
        for span in plan_batches([lengths[i] for i in order], self.batch_size):
            rows = order[span.start:span.stop]
            batch = self.tokenizer.pad(
                [{k: v for k, v in features[i].items() if k in self.model_input_names}
                 for i in rows],
                padding=True, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            output = self.forward_fn(batch)
            if carry:
                batch = {**batch, **{key: [features[i][key] for i in rows] for key in carry}}
            for i, result in zip(rows, extract(output, batch, [lengths[i] for i in rows])):
                results[i] = result
        return results

    def predict(self, rows: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None):
        """Answer a list of request rows (task input columns) with the task's output per row."""
        return self.task.predict(self, list(rows), dict(params or {}))


def load_predictor(source: str | Path, *, task_name: str | None = None, backend: str = AUTO,
                   batch_size: int = INFERENCE_BATCH_SIZE) -> Predictor:
    """Load a hub id, HF folder or MLflow model folder once, ready for batched inference.

    The task is ``task_name``, else the one the MLflow model or the model's ``config.json``
    records. A model folder that went through the quality gate carries its gate record and
    exported ONNX graphs, which ``backend="auto"`` follows.
    """
    model_source, metadata = resolve_model_source(source)
    task = get_task(task_name or metadata.get("task")
                    or task_for_config(AutoConfig.from_pretrained(model_source)))
    tokenizer = AutoTokenizer.from_pretrained(model_source)
    model = task.model_class().from_pretrained(model_source)
    folder = Path(model_source)
    return Predictor(model, tokenizer, task, backend=backend, batch_size=batch_size,
                     gate=read_gate_record(folder),
                     onnx_dir=folder / ONNX_DIR if (folder / ONNX_DIR).is_dir() else None)
