"""The predator's loss: plain action MSE by default; with NEAR_WEIGHT, samples with a boid close
by weigh more (1 + NEAR_WEIGHT * exp(-d / 40 px)); with MODE_KAPPA, a direction kernel that
seeks the teacher's most common direction. Validation still reports the plain MSE."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer.samples import Samples
from trainer.tasks.predator.config import PredatorTrainOptions
from trainer.tasks.predator.learner import PredatorLearner, mode_loss, nearest_boid_px


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


def test_mode_kappa_makes_the_loss_a_direction_kernel_plus_the_length_error() -> None:
    rows, actions = two_rows(), torch.tensor([[1.0, 1.0], [0.0, 0.5]])
    learner = PredatorLearner(PredatorTrainOptions(mode_kappa=4.0))
    terms, counts = learner.losses(FixedActions(actions), rows, contextlib.nullcontext())
    # row 0: 45 degrees off and sqrt(2) long; row 1: the right direction at half length
    row0 = 1 - math.exp(4 * (math.sqrt(0.5) - 1)) + (math.sqrt(2) - 1) ** 2
    row1 = 0.0 + 0.25
    assert list(terms) == ["mode_loss"] and set(counts) == {"angle_deg", "action_mse"}
    assert terms["mode_loss"].item() == pytest.approx((row0 + row1) / 2)
    assert counts["angle_deg"].item() == pytest.approx(45.0)
    assert counts["action_mse"].item() == pytest.approx((0.5 + 0.5) / 2 + 0.125)


def test_mode_kappa_and_near_weight_combine() -> None:
    rows, actions = two_rows(), torch.tensor([[1.0, 1.0], [0.0, 0.5]])
    learner = PredatorLearner(PredatorTrainOptions(mode_kappa=4.0, near_weight=3.0))
    terms, _ = learner.losses(FixedActions(actions), rows, contextlib.nullcontext())
    per_row = mode_loss(actions, rows["target"], 4.0).tolist()
    weight = [1 + 3 * math.exp(-50 / 40), 1 + 3 * math.exp(-500 / 40)]
    assert list(terms) == ["weighted_mode_loss"]
    assert terms["weighted_mode_loss"].item() == pytest.approx(sum(w * r for w, r in zip(weight, per_row, strict=True)) / sum(weight))


def fit_one_action(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """The single action that minimises the mean loss over the targets, by gradient descent."""
    action = torch.tensor([0.5, 0.5], requires_grad=True)
    optimizer = torch.optim.Adam([action], lr=0.02)
    for _ in range(1500):
        optimizer.zero_grad()
        loss(action.expand_as(targets), targets).mean().backward()
        optimizer.step()
    return action.detach()


def test_the_mode_loss_picks_the_common_direction_where_mse_averages() -> None:
    """A state in which the teacher heads east 3 times in 5 and north 2 times in 5 (two boids
    to intercept): MSE's best action heads between them (34 degrees north of east, towards
    neither), the mode loss's heads east, at the teacher's length."""
    targets = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 2)
    by_mse = fit_one_action(lambda a, t: ((a - t) ** 2).sum(dim=1), targets)
    by_mode = fit_one_action(lambda a, t: mode_loss(a, t, 8.0), targets)
    assert math.degrees(math.atan2(by_mse[1], by_mse[0])) == pytest.approx(math.degrees(math.atan2(0.4, 0.6)), abs=0.5)
    assert abs(math.degrees(math.atan2(by_mode[1], by_mode[0]))) < 1.0
    assert torch.linalg.vector_norm(by_mode).item() == pytest.approx(1.0, abs=0.02)


def test_the_mode_loss_stays_finite_for_zero_vectors() -> None:
    """Pursuit's action on top of a boid is zero, and a network may output zero: the loss and
    its gradient stay finite."""
    action = torch.zeros(2, 2, requires_grad=True)
    loss = mode_loss(action, torch.tensor([[0.0, 0.0], [1.0, 0.0]]), 4.0).sum()
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(action.grad).all()
