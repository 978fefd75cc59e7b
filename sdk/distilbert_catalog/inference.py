"""Batched, length-sorted inference shared by every task.

A :class:`Predictor` owns one model and tokenizer for the life of a process. Tasks turn requests
into tokenised *features* (one dict of token lists each), and :meth:`Predictor.run` sorts them by
length, pads each batch only to its own longest feature, runs the forward pass and gives back one
result per feature in the original order. The forward pass is a single attribute,
:attr:`Predictor.forward_fn`; the encoder inside it runs on the backend chosen at load time
(:mod:`distilbert_catalog.backends`: fp32, bf16, int8, ONNX Runtime fp32 or int8).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .backends import AUTO, apply_backend, resolve_backend
from .precision import default_device

Batch = Mapping[str, torch.Tensor]
ForwardFn = Callable[[Batch], Any]
# Splits a batch's model output into one numpy result per row, given each row's unpadded length.
ExtractFn = Callable[[Any, Batch, Sequence[int]], list]


def torch_forward(model: torch.nn.Module) -> ForwardFn:
    """The default forward pass: eager PyTorch, weights already in the chosen dtype, no autograd."""

    def forward(batch: Batch):
        with torch.inference_mode():
            return model(**batch)

    return forward


class Predictor:
    """A model, its tokenizer and its task, loaded once and used for batched inference."""

    def __init__(self, model, tokenizer, task, *, backend: str = AUTO, batch_size: int = 32,
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
        for begin in range(0, len(order), self.batch_size):
            rows = order[begin:begin + self.batch_size]
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


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
