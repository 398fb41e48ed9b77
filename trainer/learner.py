"""What a task gives the generic training loop (trainer/train.py): its shard schema, its model
built from saved arguments, its losses, its exports and `predict`. One subclass per task, in
trainer/tasks/<task>/."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import torch
from torch import nn

from trainer.samples import Samples, Schema


def encode_export(obj: Any) -> bytes:
    """An export's bytes: a JSON object as JSON, text (a `.js` wrapper, say) as it is."""
    return obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()


def decode_export(name: str, data: bytes) -> Any:
    """What `model_from_export` takes: the JSON object of a `.json` file, else the text."""
    return json.loads(data) if name.endswith(".json") else data.decode()


class Learner(ABC):
    task: str
    # Tensor name -> (dtype, trailing shape) that every shard must have.
    shard_schema: ClassVar[Schema]
    # The shard tensor that numbers episodes (the split keeps them whole).
    episode_tensor: str
    # Arguments of `build_model`; saved in every checkpoint and export.
    model_args: dict[str, Any]

    def batches(self, data: Samples, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
        """The row indices of each batch of a pass over `data`: shuffled by `generator`, or in
        any order when it is None (validation sums over every row). A task may group similar
        rows (flocks of one size, say) as long as every row comes once."""
        order = torch.randperm(len(data), generator=generator) if generator is not None else torch.arange(len(data))
        return list(order.split(batch_size))

    @property
    def augments(self) -> bool:
        """Whether `augment` changes batches (then it sees whole batches before ranks share them)."""
        return False

    def augment(self, batch: Samples, generator: torch.Generator) -> Samples:
        """A training batch after the task's data augmentation; none by default. Draws only from
        `generator` (the loop's batch generator, which checkpoints save), so resume stays exact."""
        return batch

    @abstractmethod
    def samples(self, tensors: dict[str, torch.Tensor]) -> Samples:
        """The columns training uses, from a shard's checked tensors."""

    @abstractmethod
    def build_model(self, model_args: dict[str, Any]) -> nn.Module:
        """A freshly initialised model (initialisation draws from torch's global generator)."""

    @abstractmethod
    def losses(
        self, model: nn.Module, batch: Samples, autocast: AbstractContextManager[Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(loss terms, counts) for a batch, in float32. The loss terms are batch means and the
        training loss is their sum, in order; counts are sums over the batch (correct moves, say)
        that validation reports as a share of its samples. The loop logs and plots every entry
        as `val_<name>` without knowing what it means."""

    @abstractmethod
    def exports(self, model: nn.Module, provenance: dict[str, Any]) -> dict[str, Any]:
        """File name under model/ -> JSON object (or text), for the model on the CPU in eval mode."""

    @abstractmethod
    def model_from_export(self, name: str, obj: Any, source: str) -> nn.Module:
        """The model that export `name` holds (as `decode_export` gives it), read back (refusing a damaged file, naming
        `source` and the field)."""

    @abstractmethod
    def predict(self, model: nn.Module, device: torch.device, *inputs: Any) -> dict[str, torch.Tensor]:
        """The model's outputs for raw inputs, in the task's own terms."""
