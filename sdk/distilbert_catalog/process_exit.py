"""A catalog process ends without walking every object its libraries made at import.

At exit CPython runs its cyclic garbage collector several times while it tears modules down, and
each pass walks every tracked object: after importing PyTorch, transformers' Trainer and MLflow
that is about a second of CPU (measured here: 1.3-1.6 s to exit, against 0.4 s with this hook),
paid by every step, torchrun rank, scoring worker and CLI run. :func:`install` registers, first
among the exit handlers (so it runs after all the others), one full collection, which finalises
whatever is garbage at that moment exactly as the interpreter would, then freezes the survivors
(:func:`gc.freeze`): they are still freed by reference counting as modules are cleared, but the
final passes no longer walk them. As the language reference says, ``__del__`` is not guaranteed
for objects alive at exit; nothing here relies on it (files are closed by ``with``).

``DISTILBERT_CATALOG_FULL_EXIT_GC=1`` keeps the interpreter's own exit.
"""

from __future__ import annotations

import atexit
import gc
import os

OFF_SWITCH = "DISTILBERT_CATALOG_FULL_EXIT_GC"


def collect_then_freeze() -> None:
    """Finalise today's garbage, then keep the live objects out of the final collections."""
    gc.collect()
    gc.freeze()


def install() -> None:
    """Register :func:`collect_then_freeze` as an exit handler, once per process."""
    if os.environ.get(OFF_SWITCH, "").strip().lower() in ("1", "true", "yes", "on"):
        return
    atexit.unregister(collect_then_freeze)
    atexit.register(collect_then_freeze)
