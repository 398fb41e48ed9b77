"""Shards from the store as tensors, checked against the learner's schema, and the split by
episode. Nothing here knows a task: the learner names its tensors."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load as load_safetensors

from common.storage import (
    DamagedShard,
    RunLayout,
    ShardManifest,
    Store,
    committed_shard_indices,
    read_committed_shard,
    read_manifest,
    withdraw_shard,
)
from trainer.samples import EPISODE_KEY, Samples, Schema

if TYPE_CHECKING:
    from trainer.learner import Learner

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A shard whose contents are not what the trainer expects, or no data at all."""


def checked_tensors(data: bytes, schema: Schema, shard_index: int, source: str) -> dict[str, torch.Tensor]:
    """A shard's tensors, each of the schema's dtype and trailing shape, all with the same rows."""
    try:
        tensors = load_safetensors(data)
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise DatasetError(f"shard {shard_index} ({source}): not a safetensors file: {e}") from e
    rows = None
    for name, (dtype, trailing) in schema.items():
        if name not in tensors:
            raise DatasetError(f"shard {shard_index} ({source}): tensor {name!r} is missing")
        t = tensors[name]
        rows = t.shape[0] if rows is None else rows
        want = (rows, *(t.shape[1 + i] if size is None and t.dim() > 1 + i else size for i, size in enumerate(trailing)))
        if t.dtype != dtype or tuple(t.shape) != want:
            shape = [rows, *("any" if size is None else size for size in trailing)]
            raise DatasetError(f"shard {shard_index} ({source}): tensor {name!r} is {t.dtype}{list(t.shape)}, expected {dtype}{shape}")
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise DatasetError(f"shard {shard_index} ({source}): non-finite numbers in {name!r}")
    return tensors


def parse_shard(learner: Learner, data: bytes, shard_index: int, source: str) -> Samples:
    tensors = checked_tensors(data, learner.shard_schema, shard_index, source)
    try:
        samples = learner.samples(tensors)
    except ValueError as e:
        raise DatasetError(f"shard {shard_index} ({source}): {e}") from e
    episode = tensors[learner.episode_tensor].to(torch.int64)
    return samples.replace(**{EPISODE_KEY: (shard_index << 32) | episode})


def read_shard(store: Store, layout: RunLayout, learner: Learner, index: int, known: ShardManifest | None = None) -> tuple[ShardManifest, Samples]:
    """One committed shard as a table, its digest and its manifest's counts verified (against
    `known` when the caller read the manifest already). A damaged shard's commit is taken back, so
    the next generate (a pipeline's retry or rerun) writes it again instead of skipping it forever."""
    try:
        manifest, data = read_committed_shard(store, layout, index, known)
    except DamagedShard as e:
        withdraw_shard(store, layout, index)
        raise DatasetError(f"{e}; its commit is withdrawn: rerun with the same RUN_ID to generate it again") from e
    part = parse_shard(learner, data, index, store.display(layout.shard_data(index)))
    del data
    episodes = int(torch.unique(part[EPISODE_KEY]).numel())
    if (len(part), episodes) != (manifest.rows, manifest.games):
        raise DatasetError(
            f"shard {index}: {store.display(layout.shard_manifest(index))} says rows={manifest.rows}, games={manifest.games}, "
            f"but the data holds {len(part)} rows of {episodes} episodes; regenerate the shard (delete both files)"
        )
    return manifest, part


def shard_indices(store: Store, layout: RunLayout, shards: int | None) -> list[int]:
    """Shards 0..shards-1, or every committed shard; refuses an empty dataset."""
    indices = list(range(shards)) if shards is not None else committed_shard_indices(store, layout)
    if not indices:
        raise DatasetError(f"{store.display(layout.data)} holds no committed shard: the dataset is empty")
    return indices


def read_manifests(store: Store, layout: RunLayout, indices: list[int]) -> list[ShardManifest]:
    """The manifests of committed shards (no data is read), refusing a shard never committed."""
    manifests = []
    for index in indices:
        manifest = read_manifest(store, layout, index)
        if manifest is None:
            raise DatasetError(f"shard {index}: {store.display(layout.shard_manifest(index))} does not exist (the shard was never committed)")
        manifests.append(manifest)
    return manifests


def load_run_data(store: Store, layout: RunLayout, learner: Learner, shards: int | None = None) -> tuple[Samples, list[ShardManifest]]:
    """Every committed shard of a run (or exactly shards 0..shards-1), digests verified, in one
    table."""
    indices = shard_indices(store, layout, shards)
    parts, manifests = [], []
    for index in indices:
        manifest, part = read_shard(store, layout, learner, index)
        parts.append(part)
        manifests.append(manifest)
    dataset = Samples.concat(parts)
    del parts
    if len(dataset) == 0:
        raise DatasetError(f"{store.display(layout.run)}: the shards hold 0 samples")
    log.info("loaded %d samples from %d shards", len(dataset), len(indices))
    return dataset, manifests


def validation_draw(episode_keys: list[int], seed: int) -> list[float]:
    """A number in [0, 1) per episode that depends only on the episode and the seed."""
    draws = []
    for key in episode_keys:
        digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
        draws.append(int.from_bytes(digest, "little") / 2**64)
    return draws


def validation_rows(data: Samples, validation_split: float, seed: int) -> torch.Tensor:
    """Whether each row's episode validates (its draw is below VALIDATION_SPLIT)."""
    episodes, inverse = torch.unique(data[EPISODE_KEY], return_inverse=True)
    draws = torch.tensor(validation_draw(episodes.tolist(), seed), dtype=torch.float64)
    return (draws < validation_split)[inverse]


def split_by_episode(data: Samples, validation_split: float, seed: int) -> tuple[Samples, Samples]:
    """Whole episodes go to one side: no episode is split between training and validation. An
    episode's side depends only on the episode and the seed, never on what else is in the data,
    so a run that gains shards (a later round) never moves a training episode into validation."""
    episodes, inverse = torch.unique(data[EPISODE_KEY], return_inverse=True)
    if len(episodes) < 2:
        raise DatasetError(f"{len(episodes)} episode(s) cannot be split into training and validation")
    draws = torch.tensor(validation_draw(episodes.tolist(), seed), dtype=torch.float64)
    is_val_episode = draws < validation_split
    if not is_val_episode.any():  # tiny data: the lowest draw validates
        is_val_episode[draws.argmin()] = True
    if is_val_episode.all():  # and the highest trains
        is_val_episode[draws.argmax()] = False
    is_val = is_val_episode[inverse]
    return data.rows(~is_val), data.rows(is_val)
