"""The predator's loss: plain action MSE by default; with NEAR_WEIGHT, samples with a boid close
by weigh more (1 + NEAR_WEIGHT * exp(-d / 40 px)), while validation still reports the plain MSE."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer.data import Samples
from trainer.tasks.predator.config import PredatorTrainOptions
from trainer.tasks.predator.learner import PredatorLearner, nearest_boid_px


class FixedActions(nn.Module):
    """Returns the given actions whatever it is shown: the loss is then known by hand."""

    def __init__(self, actions: torch.Tensor) -> None:
        super().__init__()
        self.actions = actions

    def forward(self, context: torch.Tensor, predator: torch.Tensor, boids: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return self.actions


def two_rows() -> Samples:
    boids = torch.zeros(2, 3, 4)
    boids[0, 0, :2] = torch.tensor([0.3, 0.0])  # 300 px
    boids[0, 1, :2] = torch.tensor([0.03, -0.04])  # 50 px: the nearest
    # row 0's third slot is padding at the predator (0 px): it must not count
    boids[1, 0, :2] = torch.tensor([0.0, 0.5])  # 500 px, the only boid
    return Samples(
        {
            "context": torch.ones(2, 2),
            "predator": torch.zeros(2, 4),
            "boids": boids,
            "count": torch.tensor([2, 1]),
            "target": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        }
    )


def test_the_nearest_boid_ignores_padding() -> None:
    rows = two_rows()
    distance = nearest_boid_px(rows["boids"], rows["count"])
    assert distance.tolist() == pytest.approx([50.0, 500.0])
    assert nearest_boid_px(torch.zeros(1, 2, 4), torch.tensor([0])).tolist() == [math.inf]


def test_without_near_weight_the_loss_is_the_plain_mse() -> None:
    rows, actions = two_rows(), torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    terms, counts = PredatorLearner().losses(FixedActions(actions), rows, contextlib.nullcontext())
    assert list(terms) == ["action_mse"] and list(counts) == ["angle_deg"]
    assert terms["action_mse"].item() == pytest.approx(F.mse_loss(actions, rows["target"]).item())


def test_near_weight_weighs_close_samples_and_reports_the_plain_mse_too() -> None:
    rows, actions = two_rows(), torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    learner = PredatorLearner(PredatorTrainOptions(near_weight=3.0))
    terms, counts = learner.losses(FixedActions(actions), rows, contextlib.nullcontext())
    squared = [0.5, 0.125]  # per row: ((0-1)^2 + 0) / 2 and (0 + 0.25) / 2
    weight = [1 + 3 * math.exp(-50 / 40), 1 + 3 * math.exp(-500 / 40)]
    expected = sum(w * s for w, s in zip(weight, squared, strict=True)) / sum(weight)
    assert list(terms) == ["weighted_mse"]
    assert terms["weighted_mse"].item() == pytest.approx(expected)
    assert expected > sum(squared) / 2, "the close row (the worse one here) weighs more"
    assert counts["action_mse"].item() == pytest.approx(sum(squared)), "a sum, which validation divides by its samples"
