"""Shards from the store as tensors, and the split by game."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import torch
from safetensors.torch import load as load_safetensors

from jobs.storage import RunLayout, ShardManifest, StorageError, Store, committed_shard_indices, read_committed_shard
from trainer.model import INPUT_SIZE, POLICY_SIZE

log = logging.getLogger(__name__)

# Tensor name -> (dtype, trailing shape) that a shard must have.
SHARD_SCHEMA: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {
    "features": (torch.float32, (INPUT_SIZE,)),
    "value": (torch.float32, ()),
    "policy": (torch.float32, (POLICY_SIZE,)),
    "legal": (torch.uint8, (POLICY_SIZE,)),
    "move_values": (torch.float32, (POLICY_SIZE,)),
    "game": (torch.uint32, ()),
    "ply": (torch.uint16, ()),
}


class DatasetError(ValueError):
    """A shard whose contents are not what the trainer expects, or no data at all."""


@dataclass
class UrData:
    """Samples as aligned tensors (all on one device), indexable by a tensor of rows."""

    features: torch.Tensor  # [N, 150] float32
    value: torch.Tensor  # [N] float32, P2-positive
    best: torch.Tensor  # [N] int64, the teacher's piece
    legal: torch.Tensor  # [N, 7] bool
    move_values: torch.Tensor  # [N, 7] float32
    game_key: torch.Tensor  # [N] int64, (shard << 32) | game

    def __len__(self) -> int:
        return self.features.shape[0]

    def rows(self, index: torch.Tensor) -> UrData:
        return UrData(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> UrData:
        return UrData(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    def pin_memory(self) -> UrData:
        return UrData(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    @staticmethod
    def concat(parts: list[UrData]) -> UrData:
        return UrData(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(UrData)})


def parse_shard(data: bytes, shard_index: int, source: str) -> UrData:
    """Checks a shard's tensors against the schema and converts them."""
    try:
        tensors = load_safetensors(data)
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise DatasetError(f"shard {shard_index} ({source}): not a safetensors file: {e}") from e
    rows = None
    for name, (dtype, trailing) in SHARD_SCHEMA.items():
        if name not in tensors:
            raise DatasetError(f"shard {shard_index} ({source}): tensor {name!r} is missing")
        t = tensors[name]
        rows = t.shape[0] if rows is None else rows
        if t.dtype != dtype or tuple(t.shape) != (rows, *trailing):
            raise DatasetError(f"shard {shard_index} ({source}): tensor {name!r} is {t.dtype}{list(t.shape)}, expected {dtype}{[rows, *trailing]}")
    if not torch.isfinite(tensors["features"]).all() or not torch.isfinite(tensors["value"]).all():
        raise DatasetError(f"shard {shard_index} ({source}): non-finite numbers in 'features' or 'value'")
    game = tensors["game"].to(torch.int64)
    return UrData(
        features=tensors["features"],
        value=tensors["value"],
        best=tensors["policy"].argmax(dim=1),
        legal=tensors["legal"].bool(),
        move_values=tensors["move_values"],
        game_key=(shard_index << 32) | game,
    )


def load_run_data(store: Store, layout: RunLayout, shards: int | None = None) -> tuple[UrData, list[ShardManifest]]:
    """Every committed shard of a run (or exactly shards 0..shards-1), digests verified."""
    indices = list(range(shards)) if shards is not None else committed_shard_indices(store, layout)
    if not indices:
        raise DatasetError(f"{store.display(layout.run)}/data holds no committed shard: the dataset is empty")
    parts, manifests = [], []
    for index in indices:
        manifest, data = read_committed_shard(store, layout, index)
        parts.append(parse_shard(data, index, store.display(layout.shard_data(index))))
        manifests.append(manifest)
    dataset = UrData.concat(parts)
    if len(dataset) == 0:
        raise DatasetError(f"{store.display(layout.run)}: the shards hold 0 samples")
    log.info("loaded %d samples from %d shards", len(dataset), len(indices))
    return dataset, manifests


def split_by_game(data: UrData, validation_split: float, seed: int) -> tuple[UrData, UrData]:
    """Whole games go to one side: no game is split between training and validation."""
    games, inverse = torch.unique(data.game_key, return_inverse=True)
    if len(games) < 2:
        raise DatasetError(f"{len(games)} game(s) cannot be split into training and validation")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(games), generator=generator)
    n_val = min(len(games) - 1, max(1, round(len(games) * validation_split)))
    is_val_game = torch.zeros(len(games), dtype=torch.bool)
    is_val_game[order[:n_val]] = True
    is_val = is_val_game[inverse]
    return data.rows(~is_val), data.rows(is_val)


__all__ = ["DatasetError", "StorageError", "UrData", "load_run_data", "parse_shard", "split_by_game"]
