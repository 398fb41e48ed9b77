"""Shards streamed from the store while training, for datasets larger than memory.

Each epoch visits the shards in a new seeded order. A rank reads only its share of them (shards
dealt to the ranks so that each gets about as many rows), a few shards ahead in background
threads, so the device does not wait on the store. The training rows of SHUFFLE_SHARDS shards
are shuffled together into batches; the rows of a last short batch wait for the next shards.
Validation reads every shard again (a rank its share) and keeps the validating episodes: the
same episodes, drawn by the same hash, as the in-memory path validates on.

Peak memory is a few shards (the window being shuffled, the shards read ahead), whatever the
size of the dataset. The batches differ from the in-memory path's for the same seed: that path
shuffles every row of the dataset together.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from common.storage import RunLayout, ShardManifest, Store
from trainer.data import read_shard, validation_rows
from trainer.distributed import World
from trainer.samples import Samples

if TYPE_CHECKING:
    from trainer.learner import Learner

log = logging.getLogger(__name__)

# The in-memory path holds the shards, their joined table and the split tables at once at its peak.
IN_MEMORY_FACTOR = 3


def memory_limit() -> int:
    """The memory this process may use: its cgroup's limit (a container's), else the machine's RAM."""
    cgroup = Path("/sys/fs/cgroup/memory.max")
    if cgroup.is_file():
        text = cgroup.read_text().strip()
        if text.isdigit():
            return int(text)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def fits_in_memory(manifests: list[ShardManifest], budget: int | None) -> bool:
    """Whether the in-memory path's peak (about IN_MEMORY_FACTOR times the shards' bytes) stays
    within `budget` bytes (None: half of `memory_limit()`)."""
    limit = memory_limit() // 2 if budget is None else budget
    return IN_MEMORY_FACTOR * sum(m.bytes for m in manifests) <= limit


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one rank's shuffling and augmentation in one epoch: a resume at an epoch's
    start draws exactly what the killed run drew, with no generator state to carry."""
    digest = hashlib.blake2b(f"stream:{seed}:{epoch}:{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass
class ShardStream:
    """A run's shards, read as training goes; `manifests` are the committed shards to read."""

    store: Store
    layout: RunLayout
    learner: Learner
    manifests: list[ShardManifest]
    validation_split: float
    seed: int
    shuffle_shards: int = 4
    prefetch_shards: int = 2

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.manifests)

    def epoch_shards(self, epoch: int, world: World) -> list[int]:
        """This rank's shards in an epoch, in reading order. The order is one seeded shuffle
        shared by every rank; each shard goes to the rank with the fewest rows so far."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, -1))
        order = [self.manifests[i] for i in torch.randperm(len(self.manifests), generator=generator).tolist()]
        dealt: list[list[int]] = [[] for _ in range(world.size)]
        rows = [0] * world.size
        for manifest in order:
            rank = rows.index(min(rows))
            dealt[rank].append(manifest.shard_index)
            rows[rank] += manifest.rows
        return dealt[world.rank]

    @cached_property
    def _by_index(self) -> dict[int, ShardManifest]:
        return {m.shard_index: m for m in self.manifests}

    def _read(self, index: int, keep: Callable[[Samples], Samples]) -> Samples:
        _, table = read_shard(self.store, self.layout, self.learner, index, self._by_index[index])
        return keep(table)

    def _prefetched(self, indices: list[int], keep: Callable[[Samples], Samples]) -> Iterator[Samples]:
        """The shards' kept rows in order, read up to PREFETCH_SHARDS ahead in background threads."""
        ahead = max(1, self.prefetch_shards)
        with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="shard-reader") as pool:
            pending: list[Future[Samples]] = []
            try:
                for index in indices:
                    pending.append(pool.submit(self._read, index, keep))
                    if len(pending) > ahead:
                        yield pending.pop(0).result()
                while pending:
                    yield pending.pop(0).result()
            finally:  # a consumer that stops early (the other ranks ran out) reads no further
                for future in pending:
                    future.cancel()

    def _train_rows(self, table: Samples) -> Samples:
        return table.rows(~validation_rows(table, self.validation_split, self.seed))

    def _validation_rows(self, table: Samples) -> Samples:
        return table.rows(validation_rows(table, self.validation_split, self.seed))

    def train_batches(self, epoch: int, world: World, batch_size: int, generator: torch.Generator) -> Iterator[Samples]:
        """This rank's training batches of one epoch (`batch_size` rows each, but a last short
        one), shuffled within windows of SHUFFLE_SHARDS shards by `generator`."""
        window: list[Samples] = []
        for part in self._prefetched(self.epoch_shards(epoch, world), self._train_rows):
            window.append(part)
            if len(window) >= self.shuffle_shards:
                carry = yield from self._window_batches(window, batch_size, generator, last=False)
                window = [carry] if carry is not None else []
        yield from self._window_batches(window, batch_size, generator, last=True)

    def _window_batches(
        self, window: list[Samples], batch_size: int, generator: torch.Generator, last: bool
    ) -> Generator[Samples, None, Samples | None]:
        """The batches of a window's rows shuffled together; returns the rows of short batches
        (which wait for the next window) unless it is the `last`."""
        table = Samples.concat(window) if len(window) > 1 else window[0] if window else None
        window.clear()
        if table is None or len(table) == 0:
            return None
        short: list[torch.Tensor] = []
        for index in self.learner.batches(table, batch_size, generator):
            if len(index) < batch_size and not last:
                short.append(index)
            else:
                yield table.rows(index)
        return table.rows(torch.cat(short)) if short else None

    def validation_parts(self, world: World) -> Iterator[Samples]:
        """The validating rows of this rank's share of the shards, one shard at a time."""
        indices = sorted(m.shard_index for m in self.manifests)[world.rank :: world.size]
        yield from self._prefetched(indices, self._validation_rows)

    def describe(self) -> str:
        return f"{len(self.manifests)} shards, {self.rows} samples, {self.shuffle_shards} shuffled together, {self.prefetch_shards} read ahead"
