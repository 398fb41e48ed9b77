"""The streamed path's bookkeeping without a store: which shards each rank reads in an epoch,
and when the data is loaded whole instead. The contract suite (tests/test_contract.py) streams
real shards for every task, alone and at 2 ranks."""

from __future__ import annotations

from typing import Any, cast

import pytest

from common.storage import RunLayout, ShardManifest, Store
from trainer.distributed import World
from trainer.stream import IN_MEMORY_FACTOR, ShardStream, fits_in_memory, memory_limit


def manifest(index: int, rows: int) -> ShardManifest:
    return ShardManifest(
        shard_index=index,
        file=f"shard-{index}",
        rows=rows,
        games=1,
        bytes=rows * 100,
        sha256="0" * 64,
        seed=0,
        generator="test",
        settings={},
        elapsed_seconds=0.0,
        created_at="2026-12-07T00:00:00+00:00",
    )


def stream(rows: list[int], seed: int = 0) -> ShardStream:
    learner = cast(Any, None)  # dealing shards reads no data
    return ShardStream(Store("memory://stream"), RunLayout("ur", "r"), learner, [manifest(i, n) for i, n in enumerate(rows)], 0.1, seed)


@pytest.mark.parametrize("ranks", [1, 2, 3, 8])
def test_every_shard_goes_to_one_rank_and_the_ranks_get_about_as_many_rows(ranks: int) -> None:
    rows = [1000 + 37 * (i % 7) for i in range(40)]
    s = stream(rows)
    for epoch in range(5):
        shares = [s.epoch_shards(epoch, World(rank=r, size=ranks)) for r in range(ranks)]
        dealt = sorted(i for share in shares for i in share)
        assert dealt == list(range(40)), "each shard once"
        totals = [sum(rows[i] for i in share) for share in shares]
        assert max(totals) - min(totals) <= max(rows), totals


def test_the_shard_order_is_seeded_and_new_each_epoch() -> None:
    s = stream([100] * 30)
    alone = World()
    orders = [s.epoch_shards(epoch, alone) for epoch in range(4)]
    assert orders == [stream([100] * 30).epoch_shards(epoch, alone) for epoch in range(4)], "the same seed, the same orders"
    assert len({tuple(order) for order in orders}) == 4, "a new order each epoch"
    assert orders[0] != stream([100] * 30, seed=1).epoch_shards(0, alone), "another seed, another order"


def test_the_data_loads_whole_only_when_three_copies_fit_the_budget() -> None:
    manifests = [manifest(i, 1000) for i in range(10)]  # 1 MB of shards
    total = sum(m.bytes for m in manifests)
    assert fits_in_memory(manifests, IN_MEMORY_FACTOR * total)
    assert not fits_in_memory(manifests, IN_MEMORY_FACTOR * total - 1)
    assert not fits_in_memory(manifests, 0), "MEMORY_BUDGET=0 always streams"
    assert fits_in_memory(manifests, None), "auto: half of this machine's memory holds 3 MB"
    assert memory_limit() > 1 << 28
