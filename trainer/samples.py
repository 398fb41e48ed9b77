"""Aligned tensor columns (a batch, a shard, a whole table) and the schema a learner declares
for its shards. The data loader and the learners both build on these; neither defines them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

# Every table carries this column: (shard << 32) | episode, so splits keep episodes whole.
EPISODE_KEY = "episode_key"

# Tensor name -> (dtype, trailing shape); None in the shape: any size (the same in every row).
Schema = dict[str, tuple[torch.dtype, tuple[int | None, ...]]]


@dataclass
class Samples:
    """Aligned columns (same first dimension, one device), indexable by a tensor of rows."""

    columns: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Samples:
        return Samples({name: fn(t) for name, t in self.columns.items()})

    def rows(self, index: torch.Tensor) -> Samples:
        return self.map(lambda t: t[index])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Samples:
        return self.map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Samples:
        return self.map(lambda t: t.pin_memory())

    def replace(self, **columns: torch.Tensor) -> Samples:
        return Samples({**self.columns, **columns})

    @property
    def device(self) -> torch.device:
        return next(iter(self.columns.values())).device

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.columns.values())

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        return Samples({name: torch.cat([p.columns[name] for p in parts]) for name in parts[0].columns})
