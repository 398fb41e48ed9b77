"""Mirror images as training data (`MIRROR`). The claim behind them is checked on the real
generator: an episode mirrored left-right, up-down or both plays out as the mirror image of the
original, with the teacher's actions mirrored too, for pursuit and for the planner. Then the
augmentation itself: every row flipped one of the four ways, consistently across its columns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from trainer.samples import Samples
from trainer.tasks.predator.config import PredatorTrainOptions
from trainer.tasks.predator.learner import PredatorLearner

STEPS = 200
# Not bit for bit: a mirrored position is W - x, so differences round differently. Measured:
# about 1e-9 px after 300 steps; a real asymmetry (a rule or a tie-break) shows at once.
TOLERANCE = 1e-6
FLIPS = [(True, False), (False, True), (True, True)]


def trace(generator: Path, *args: str) -> dict[str, Any]:
    cmd = [str(generator), "predator", "trace", "--steps", str(STEPS), *args]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def mirrored(body: dict[str, Any], width: float, height: float, flip: tuple[bool, bool]) -> dict[str, Any]:
    """A boid or the predator mirrored: position about the canvas's middle, velocity negated."""
    pos, vel = dict(body["pos"]), dict(body["vel"])
    for axis, size, on in (("x", width, flip[0]), ("y", height, flip[1])):
        if on:
            pos[axis], vel[axis] = size - pos[axis], -vel[axis]
    return {**body, "pos": pos, "vel": vel}


def mirrored_state(state: dict[str, Any], flip: tuple[bool, bool]) -> dict[str, Any]:
    w, h = state["width"], state["height"]
    return {**state, "boids": [mirrored(b, w, h, flip) for b in state["boids"]], "predator": mirrored(state["predator"], w, h, flip)}


def largest_gap(a: dict[str, Any], b: dict[str, Any]) -> float:
    bodies = [*zip(a["boids"], b["boids"], strict=True), (a["predator"], b["predator"])]
    return max(abs(x[part][axis] - y[part][axis]) for x, y in bodies for part in ("pos", "vel") for axis in ("x", "y"))


@pytest.mark.parametrize("player", ["pursuit", "planner"])
@pytest.mark.parametrize("flip", FLIPS)
def test_a_mirrored_episode_plays_out_as_the_mirror_image(generator: Path, tmp_path: Path, player: str, flip: tuple[bool, bool]) -> None:
    original = trace(generator, "--player", player, "--seed", "3")
    start = tmp_path / "mirrored.json"
    start.write_text(json.dumps(mirrored_state(original["initial"], flip)))
    mirror = trace(generator, "--player", player, "--state", str(start))
    assert len(original["steps"]) == len(mirror["steps"]) == STEPS
    assert original["caught"] > 0, "the episode has catches, whose order and timing must match too"
    signs = [-1.0 if on else 1.0 for on in flip]
    w, h = original["initial"]["width"], original["initial"]["height"]
    for k, (step, image) in enumerate(zip(original["steps"], mirror["steps"], strict=True)):
        assert step["caught"] == image["caught"], f"step {k}: caught"
        expected = mirrored_state({"width": w, "height": h, "boids": step["boids"], "predator": step["predator"]}, flip)
        assert largest_gap(expected, image) < TOLERANCE, f"step {k}: positions"
        action = [s * a for s, a in zip(signs, step["action"], strict=True)]
        assert image["action"] == pytest.approx(action, abs=TOLERANCE), f"step {k}: action"


def batch(rows: int, seed: int = 0) -> Samples:
    g = torch.Generator().manual_seed(seed)
    count = torch.randint(1, 6, (rows,), generator=g)
    boids = torch.randn(rows, 5, 4, generator=g) * (torch.arange(5)[None, :] < count[:, None])[..., None]
    predator = torch.cat([torch.randn(rows, 2, generator=g), torch.zeros(rows, 2)], dim=1)
    context, target = torch.rand(rows, 2, generator=g), torch.randn(rows, 2, generator=g)
    return Samples({"context": context, "predator": predator, "boids": boids, "count": count, "target": target})


def test_each_row_is_flipped_one_of_four_ways_consistently() -> None:
    before = batch(4000)
    after = PredatorLearner().augment(before, torch.Generator().manual_seed(1))
    signs = torch.sign(after["target"] / before["target"])
    assert set(map(tuple, signs.tolist())) == {(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)}
    patterns = torch.unique(signs, dim=0, return_counts=True)[1]
    assert patterns.min() > 850 and patterns.max() < 1150, f"about a quarter each way: {patterns.tolist()}"
    assert torch.equal(after["predator"], before["predator"] * torch.cat([signs, torch.ones_like(signs)], dim=1))
    assert torch.equal(after["boids"], before["boids"] * torch.cat([signs, signs], dim=1)[:, None, :])
    assert torch.equal(after["context"], before["context"]) and torch.equal(after["count"], before["count"])
    again = PredatorLearner().augment(before, torch.Generator().manual_seed(1))
    assert torch.equal(again["target"], after["target"]), "the flips come from the generator alone"


def test_without_mirror_the_batch_is_untouched() -> None:
    before, g = batch(100), torch.Generator().manual_seed(1)
    state = g.get_state()
    after = PredatorLearner(PredatorTrainOptions(mirror=False)).augment(before, g)
    assert all(torch.equal(after[name], before[name]) for name in before)
    assert torch.equal(g.get_state(), state), "nothing drawn, so runs without mirror train as before"
