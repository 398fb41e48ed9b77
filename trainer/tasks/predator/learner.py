"""The predator for the training loop: the shard schema, the transformer, the action loss, the
three weight files and `predict`."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from trainer.learner import Learner
from trainer.samples import Samples, Schema
from trainer.tasks.predator.config import PredatorTrainOptions
from trainer.tasks.predator.export import from_browser, from_js, from_ours, to_browser, to_js, to_ours
from trainer.tasks.predator.model import ACTION_SIZE, BOID_SIZE, CONTEXT_SIZE, PREDATOR_SIZE, PredatorNet

POOL_BATCHES = 16
POSITION_SCALE = 1000.0  # pixels per unit of an encoded boid offset (docs/predator.md, section 5)
NEAR_SCALE_PX = 40.0  # NEAR_WEIGHT's distance scale: about three catch radii


class PredatorLearner(Learner):
    task = "predator"
    shard_schema: ClassVar[Schema] = {
        "context": (torch.float32, (CONTEXT_SIZE,)),
        "predator": (torch.float32, (PREDATOR_SIZE,)),
        "count": (torch.uint16, ()),
        "target": (torch.float32, (ACTION_SIZE,)),
        "episode": (torch.uint32, ()),
        "step": (torch.uint32, ()),
        "boids": (torch.float32, (None, BOID_SIZE)),  # padded to the shard's MAX_BOIDS
    }
    episode_tensor = "episode"

    def __init__(self, options: PredatorTrainOptions | None = None) -> None:
        self.options = options or PredatorTrainOptions()
        self.model_args = self.options.architecture()
        self.max_boids: int | None = None

    def samples(self, tensors: dict[str, torch.Tensor]) -> Samples:
        boids, counts = tensors["boids"], tensors["count"].to(torch.int64)
        if len(counts) and int(counts.max()) > boids.shape[1]:
            raise ValueError(f"tensor 'count' says {int(counts.max())} boids, but 'boids' holds {boids.shape[1]} per sample")
        if self.max_boids is not None and boids.shape[1] != self.max_boids:
            raise ValueError(f"MAX_BOIDS is {boids.shape[1]}, but earlier shards of this run have {self.max_boids}: a run's shards share MAX_BOIDS")
        self.max_boids = boids.shape[1]
        return Samples({"context": tensors["context"], "predator": tensors["predator"], "boids": boids, "count": counts, "target": tensors["target"]})

    def batches(self, data: Samples, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
        """Batches of flocks of similar size, so that little of each batch is padding: a random
        order is cut into pools of POOL_BATCHES batches, each pool sorted by boid count and cut
        into batches, and the batches shuffled. Validation (no generator) sorts everything."""
        count = data["count"]
        if generator is None:
            return list(torch.argsort(count, stable=True).cpu().split(batch_size))
        order = torch.randperm(len(data), generator=generator)
        batches: list[torch.Tensor] = []
        for pool in order.split(batch_size * POOL_BATCHES):
            by_count = torch.argsort(count[pool.to(count.device)], stable=True).cpu()
            batches += list(pool[by_count].split(batch_size))
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    @property
    def augments(self) -> bool:
        return self.options.mirror

    def augment(self, batch: Samples, generator: torch.Generator) -> Samples:
        """With MIRROR, each row flipped left-right and/or up-down at random (a quarter of the
        rows each way). The simulation's rules, its wraps, the encoding and the episode
        distribution are all symmetric under both flips, so a mirrored state with the mirrored
        teacher action is a sample of a teacher exactly as strong: four samples for one."""
        if not self.options.mirror:
            return batch
        signs = (torch.randint(0, 2, (len(batch), 2), generator=generator) * 2 - 1).to(batch.device, torch.float32)
        ones = torch.ones_like(signs)
        # predator: [vx, vy, 0, 0]; boids: [dx, dy, vx, vy]; target: [ax, ay]; context: sizes.
        return batch.replace(
            predator=batch["predator"] * torch.cat([signs, ones], dim=1),
            boids=batch["boids"] * torch.cat([signs, signs], dim=1)[:, None, :],
            target=batch["target"] * signs,
        )

    def build_model(self, model_args: dict[str, Any]) -> PredatorNet:
        return PredatorNet(**model_args)

    def losses(
        self, model: torch.nn.Module, batch: Samples, autocast: AbstractContextManager[Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The loss: the action's MSE, or with MODE_KAPPA the mode-seeking `mode_loss`; with
        NEAR_WEIGHT either is weighted towards samples with a boid close by (`weighted_...`),
        and `action_mse` is reported plain beside it. Also the angle between predicted and
        teacher directions in degrees (sums, which validation reports as means; a zero action
        has angle 0)."""
        count = batch["count"]
        # Only as many boid slots as the batch's largest flock: the rest is padding in every row.
        width = max(1, int(count.max())) if len(batch) else 1
        boids = batch["boids"][:, :width]
        with autocast:
            action = model(batch["context"], batch["predator"], boids, count).float()
        target = batch["target"]
        cross = action[:, 0] * target[:, 1] - action[:, 1] * target[:, 0]
        angle = torch.atan2(cross.abs(), (action * target).sum(dim=1)) * (180.0 / math.pi)
        kappa, near_weight = self.options.mode_kappa, self.options.near_weight
        if not (kappa or near_weight):
            return {"action_mse": F.mse_loss(action, target)}, {"angle_deg": angle.detach().sum()}
        squared = ((action - target) ** 2).mean(dim=1)
        per_sample = mode_loss(action, target, kappa) if kappa else squared
        name = ("weighted_" if near_weight else "") + ("mode_loss" if kappa else "mse")
        if near_weight:
            weight = 1.0 + near_weight * torch.exp(-nearest_boid_px(boids, count) / NEAR_SCALE_PX)
            loss = (weight * per_sample).sum() / weight.sum()
        else:
            loss = per_sample.mean()
        return {name: loss}, {"angle_deg": angle.detach().sum(), "action_mse": squared.detach().sum()}

    def exports(self, model: torch.nn.Module, provenance: dict[str, Any]) -> dict[str, Any]:
        """model/weights.json (ours), model/browser_weights.json and model/predator_model.js."""
        assert isinstance(model, PredatorNet)
        browser = to_browser(model)
        return {"weights.json": to_ours(model, provenance), "browser_weights.json": browser, "predator_model.js": to_js(browser)}

    def model_from_export(self, name: str, obj: Any, source: str) -> PredatorNet:
        if name == "weights.json":
            return from_ours(obj, source)
        return from_browser(from_js(obj, source) if name.endswith(".js") else obj, source)

    def predict(self, model: torch.nn.Module, device: torch.device, *inputs: Any) -> dict[str, torch.Tensor]:
        """Actions [N, 2] for context [N, 2], predator [N, 4], boids [N, M, 4] and, if boid
        rows are padded, count [N]."""
        context, predator, boids, count = (*inputs, None)[:4]

        def tensor(x: Any) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32, device=device)

        counts = None if count is None else torch.as_tensor(count, device=device).to(torch.int64)
        return {"action": model(tensor(context), tensor(predator), tensor(boids), counts).cpu()}


def mode_loss(action: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
    """Per row: 1 - exp(kappa * (cos(angle) - 1)), plus the squared error of the length.
    Where the teacher chooses between directions in states the network cannot tell apart (two
    boids to intercept), MSE's optimum is their mean, which heads for neither; this kernel's is
    the most common direction, to within about 1 / sqrt(kappa) radians. The length term keeps
    the output as long as the teacher's, for players that use it as it is."""
    eps = 1e-12  # a zero vector's norm has no gradient at 0; this keeps it finite
    length = torch.sqrt((action**2).sum(dim=1) + eps)
    target_length = torch.sqrt((target**2).sum(dim=1) + eps)
    cosine = (action * target).sum(dim=1) / (length * target_length)
    return 1.0 - torch.exp(kappa * (cosine - 1.0)) + (length - target_length) ** 2


def nearest_boid_px(boids: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Each row's distance in pixels from the predator to its nearest boid (the encoded offsets
    are wrapped once already); infinite for a row without boids."""
    distance = torch.linalg.vector_norm(boids[..., :2], dim=-1) * POSITION_SCALE
    padding = torch.arange(boids.shape[1], device=boids.device)[None, :] >= count[:, None]
    return distance.masked_fill(padding, math.inf).amin(dim=1)
