"""Ur for the training loop: the shard schema, both networks, their losses, the two weight files
and `predict`."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from trainer.learner import Learner
from trainer.samples import Samples, Schema
from trainer.tasks.ur.config import UrTrainOptions
from trainer.tasks.ur.export import from_compat, from_ours, to_compat, to_ours
from trainer.tasks.ur.model import HIDDEN_SIZES, INPUT_SIZE, POLICY_SIZE, UrNets

ILLEGAL_LOGIT = -1e4  # finite, so soft targets of 0 times it stay 0
MOVER_FEATURE = 46  # +1 when P1 is to move, -1 for P2 (docs/ur.md, section 4)
# The options' illegal_mass_weight weighs -log(probability on legal moves) under a softmax over
# all 7 outputs, the old engine's: the masked cross-entropy alone never pushes an illegal logit
# down, and there about half of the probability fell on illegal pieces.


class UrLearner(Learner):
    task = "ur"
    shard_schema: ClassVar[Schema] = {
        "features": (torch.float32, (INPUT_SIZE,)),
        "value": (torch.float32, ()),
        "policy": (torch.float32, (POLICY_SIZE,)),
        "legal": (torch.uint8, (POLICY_SIZE,)),
        "move_values": (torch.float32, (POLICY_SIZE,)),
        "game": (torch.uint32, ()),
        "ply": (torch.uint16, ()),
    }
    episode_tensor = "game"

    def __init__(self, options: UrTrainOptions | None = None) -> None:
        self.options = options or UrTrainOptions()
        self.model_args = {"hidden_sizes": list(HIDDEN_SIZES), "dropout": self.options.dropout}

    def samples(self, tensors: dict[str, torch.Tensor]) -> Samples:
        return Samples(
            {
                "features": tensors["features"],  # [N, 150]
                "value": tensors["value"],  # [N], P2-positive
                "best": tensors["policy"].argmax(dim=1),  # [N], the teacher's piece
                "legal": tensors["legal"].bool(),  # [N, 7]
                "move_values": tensors["move_values"],  # [N, 7]
            }
        )

    def build_model(self, model_args: dict[str, Any]) -> UrNets:
        return UrNets(tuple(model_args["hidden_sizes"]), model_args["dropout"])

    def losses(
        self, model: torch.nn.Module, batch: Samples, autocast: AbstractContextManager[Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Value MSE, policy cross-entropy over the legal moves and the probability that a softmax
        over all 7 outputs puts on legal moves (loss terms); teacher moves matched and the
        probability on illegal moves (counts)."""
        with autocast:
            value, logits = model(batch["features"])
        legal = batch["legal"]
        raw = logits.float()
        log_legal_mass = torch.logsumexp(raw.masked_fill(~legal, -math.inf), dim=1) - torch.logsumexp(raw, dim=1)
        log_legal_mass = torch.where(legal.any(dim=1), log_legal_mass, 0.0)  # a row with no legal move has nothing to push
        logits = raw.masked_fill(~legal, ILLEGAL_LOGIT)
        value_loss = F.mse_loss(value.float(), batch["value"])
        temperature = self.options.soft_policy_temperature
        if temperature > 0:
            # The mover's view: P2 maximises the P2-positive values, P1 minimises them.
            side = torch.where(batch["features"][:, MOVER_FEATURE] > 0, -1.0, 1.0).unsqueeze(1)
            target = (side * batch["move_values"] / temperature).masked_fill(~legal, -math.inf).softmax(dim=1)
            policy_loss = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
        else:
            policy_loss = F.cross_entropy(logits, batch["best"])
        correct = (logits.argmax(dim=1) == batch["best"]).sum()
        terms = {"value_mse": value_loss, "policy_ce": policy_loss, "illegal_nll": -self.options.illegal_mass_weight * log_legal_mass.mean()}
        return terms, {"policy_accuracy": correct, "illegal_probability": (1 - log_legal_mass.exp()).sum()}

    def exports(self, model: torch.nn.Module, provenance: dict[str, Any]) -> dict[str, Any]:
        """model/weights.json (ours) and model/compat_weights.json (the old engine's)."""
        assert isinstance(model, UrNets), "built by build_model"
        compat_metadata = {k: provenance[k] for k in ("run_id", "git_revision", "dataset_sha256", "created_at")}
        compat_metadata["layout"] = "each matrix flattened as (in, out): index i * out + j"
        return {"weights.json": to_ours(model, provenance), "compat_weights.json": to_compat(model, compat_metadata)}

    def model_from_export(self, name: str, obj: dict[str, Any], source: str) -> UrNets:
        return (from_ours if name == "weights.json" else from_compat)(obj, source)

    def predict(self, model: torch.nn.Module, device: torch.device, *inputs: Any) -> dict[str, torch.Tensor]:
        """Value (P2-positive, [-1, 1]) and move probabilities for [N, 150] features; illegal
        moves get probability 0 when a [N, 7] legal mask is given."""
        features, legal = (*inputs, None)[:2]
        x = torch.as_tensor(features, dtype=torch.float32, device=device).reshape(-1, INPUT_SIZE)
        value, logits = model(x)
        if legal is not None:
            mask = torch.as_tensor(legal, device=device).bool().reshape(-1, POLICY_SIZE)
            logits = logits.masked_fill(~mask, -math.inf)
        return {"value": value.cpu(), "policy": logits.softmax(dim=1).cpu()}
