"""The boids predator for the jobs (contract: docs/predator.md). So far only its generator is
built: the learner and the evaluator are the next step, and until then the train, evaluate and
pipeline jobs refuse TASK=predator before doing any work."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from jobs.tasks.spec import TaskSpec


class PredatorGenerateSettings(BaseModel):
    teacher: Literal["pursuit", "planner"] = Field("planner", description="The teacher that labels (and drives) every step")
    steps: int = Field(1500, ge=1, le=100_000, description="Steps per episode at most")
    max_boids: int = Field(50, ge=1, le=200, description="Most boids in an episode (1..MAX_BOIDS drawn per episode)")


class PredatorTrainSettings(BaseModel):
    pass


class PredatorEvaluateSettings(BaseModel):
    pass


def generator_args(s: Any, episodes: int) -> list[str]:
    return ["predator", "generate", "--episodes", str(episodes), "--teacher", s.teacher, "--steps", str(s.steps), "--max-boids", str(s.max_boids)]


def shard_settings(s: Any) -> dict[str, Any]:
    return {"teacher": s.teacher, "steps": s.steps, "max_boids": s.max_boids, "episodes_total": s.games, "shards": s.shards}


def spec() -> TaskSpec:
    return TaskSpec(
        name="predator",
        title="the boids predator",
        episodes="episodes",
        presets={"test": (20, 5), "fast": (100, 10), "standard": (400, 20), "production": (2000, 30)},
        settings={"generate": PredatorGenerateSettings, "train": PredatorTrainSettings, "evaluate": PredatorEvaluateSettings},
        generator_args=generator_args,
        shard_settings=shard_settings,
        artifacts=("weights.json", "browser_weights.json", "predator_model.js"),
        headline=(),
        evaluate=None,
        learner=None,
        promotion="the lower 95% bound of the paired catch-rate difference against the champion",
    )
