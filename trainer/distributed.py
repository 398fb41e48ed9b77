"""Data-parallel training across processes: who this process is among the ranks that torchrun
started, and the few collective steps the loop needs. The trainer reads no environment: the
train job (jobs/train.py) learns the rank from torchrun and passes a `World` in.

Every rank holds the same model (DistributedDataParallel averages the gradients), draws the same
batches from the same generator, and trains on its own share of each batch's rows, so a run's
recipe (BATCH_SIZE is the global batch) does not change with the number of ranks.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

# A rank that waits longer than this for the others (one died without the group noticing) fails.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; the default is training alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def writer(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics, TensorBoard, plots and exports."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """Each rank of a CUDA run gets the GPU of its local rank."""
        if device.type == "cuda" and self.distributed:
            return torch.device("cuda", self.local_rank)
        return device

    def share(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a batch (every size-th row from its rank on)."""
        return index[self.rank :: self.size] if self.distributed else index


def start(world: World, device: torch.device) -> None:
    """Joins the process group that torchrun set up (NCCL on CUDA, gloo on CPU)."""
    if not world.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend(device), timeout=COLLECTIVE_TIMEOUT)


def backend(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def all_sum(value: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of `value` over the ranks (the value itself when training alone)."""
    if world.distributed:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def barrier(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()


def stop(world: World) -> None:
    """Leaves the process group once every rank is done."""
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def while_every_rank_has_one(items: Iterator[T], world: World, device: torch.device) -> Iterator[T]:
    """The items while every rank still has one: ranks that read different data step together
    (DistributedDataParallel needs every rank in every step), and the first to run out ends the
    pass for all. Training alone, simply the items."""
    if not world.distributed:
        yield from items
        return
    try:
        while True:
            item = next(items, None)
            have = torch.tensor(0 if item is None else 1, device=device)
            dist.all_reduce(have, op=dist.ReduceOp.MIN)
            if not have.item():
                return
            assert item is not None
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()  # stops the rank's readers


def gathered(value: Any, world: World) -> list[Any]:
    """`value` of every rank, in rank order (a list of this rank's alone when training alone)."""
    if not world.distributed:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values
