"""Which process of a distributed (PyTorch DDP) job this is, from the variables Azure ML sets.

A ``distribution: {type: pytorch}`` job on Azure ML sets, in every process, ``MASTER_ADDR``,
``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``, ``RANK`` and ``LOCAL_RANK``; ``torchrun`` and the
catalog's local runner set the same. The training code reads these six and nothing else, so the
same component runs unchanged on one process, under ``torchrun`` or on an Azure ML cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

#: the variables Azure ML sets in every process of a PyTorch job
ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "RANK", "LOCAL_RANK")

T = TypeVar("T")


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    local_rank: int = 0
    node_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes outputs, tracks to MLflow and prints progress."""
        return self.rank == 0


def current() -> Rank:
    """This process's rank, from the environment (one process when the variables are unset)."""
    def number(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        return int(value) if value.strip().lstrip("-").isdigit() else default

    return Rank(rank=number("RANK", 0), local_rank=number("LOCAL_RANK", 0),
                node_rank=number("NODE_RANK", 0), world_size=max(1, number("WORLD_SIZE", 1)))


def join_process_group(backend: str) -> Rank:
    """Join the job's process group (``env://``: the variables above) if there is more than one
    process and it is not joined yet; the Trainer (accelerate) then uses this group."""
    rank = current()
    if rank.distributed:
        import torch.distributed as dist

        missing = [name for name in ENV if name not in os.environ and name != "NODE_RANK"]
        if missing:
            raise RuntimeError(f"WORLD_SIZE={rank.world_size} but {', '.join(missing)} not set; "
                               "start the job with torchrun or an Azure ML pytorch distribution")
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
    return rank


def from_main(value: T) -> T:
    """Rank 0's ``value`` on every rank (a broadcast); ``value`` itself without a process group.

    For decisions every rank must share, e.g. a precision rank 0 measured."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
