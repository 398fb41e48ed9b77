"""What a task tells the jobs (see jobs/tasks/__init__.py for the registry)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

STAGES = ("generate", "train", "evaluate")


@dataclass(frozen=True)
class Metric:
    """A headline metric of training: the summary and the cluster's progress lines show it."""

    key: str  # in metrics.jsonl, e.g. "val_policy_accuracy"
    label: str  # e.g. "policy accuracy"
    format: str  # a format spec, e.g. ".1%"

    def show(self, metrics: dict[str, Any]) -> str:
        return f"{self.label} {metrics[self.key]:{self.format}}"


@dataclass(frozen=True)
class Table:
    """A further table of an evaluation, after the main one in report.md and under its key in
    report.json (Ur's players measured against perfect play)."""

    key: str  # in report.json, e.g. "perfect_play"
    title: str  # a heading in report.md
    intro: str  # a sentence under it
    rows: list[dict[str, Any]]
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]]


@dataclass(frozen=True)
class Evaluation:
    """What a task's evaluator returns: one result per opponent (saved as is in report.json),
    how to show them, and the evidence against the champion for promotion."""

    player: str  # how the new model played, e.g. "value"
    intro: str  # a sentence for report.md under the title
    results: list[dict[str, Any]]  # each has "opponent" and "label"
    score: str  # the result key of the score the chart shows, e.g. "a_win_rate"
    interval: str  # the result key of its 95% interval, e.g. "a_win_rate_ci95"
    score_label: str  # the chart's axis, e.g. "win rate of the new model"
    reference: float  # a line on the chart (0.5: an even match)
    reference_label: str  # what the line is, for the chart's legend
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]]  # report.md's table
    champion_bound: float | None  # lower 95% bound of the promotion score against the champion
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str  # for people: "the Royal Game of Ur"
    episodes: str  # what GAMES counts: "games" or "episodes"
    presets: dict[str, tuple[int, int]]  # PRESET -> (GAMES, EPOCHS)
    # Generic settings whose default differs for this task (EVAL_GAMES, LEARNING_RATE, ...)
    defaults: dict[str, Any]
    settings: dict[str, type[BaseModel]]  # stage -> the task's own settings (plain models)
    generator_args: Callable[[Any, int], list[str]]  # (settings, episodes in the shard) -> rust_gen args
    shard_settings: Callable[[Any], dict[str, Any]]  # recorded in each shard manifest
    artifacts: tuple[str, ...]  # files under model/, ours ("weights.json") first
    headline: tuple[Metric, ...]
    # (settings, rust_gen, model, champion, evaluator_inputs' flags); None while the task has
    # no evaluator yet
    evaluate: Callable[[Any, str, Path, Path | None, list[str]], Evaluation] | None
    # "module:Class" of its trainer.learner.Learner, imported only by the train job; None while
    # the task has no learner yet (then only its generate job runs)
    learner: str | None
    promotion: str  # what PROMOTION_THRESHOLD bounds, for people
    # (settings, a local copy of the run's model/weights.json) -> the generator's student flags,
    # for rounds after the first; None: the task has no student (ROUNDS must be 1)
    student_args: Callable[[Any, Path], list[str]] | None = None
    # (settings, store, a scratch folder) -> rust_gen flags naming files the generator reads
    # from the store, fetched into the folder (Ur's solved table for TEACHER=perfect)
    generator_inputs: Callable[[Any, Any, Path], list[str]] | None = None
    # The same for the evaluator's matches (Ur's solved table, to measure against perfect play)
    evaluator_inputs: Callable[[Any, Any, Path], list[str]] | None = None
    # What the task's cluster ConfigMap (k8s/<task>/20-settings.yaml) sets beyond the common values
    cluster_settings: dict[str, str] = field(default_factory=dict)
    # Whether `rust_gen <task> solve` computes the exact value of every position (the solve job)
    solvable: bool = False
    # The sweep job's default space (jobs/space.py's grammar) over the task's train settings
    sweep_space: str = "learning_rate=0.0005..0.008:log,batch_size=256|512|1024,epochs=5..30"
    # (label, report.json -> the figure) that SWEEP_METRIC=strength maximises
    strength: tuple[str, Callable[[dict[str, Any]], float]] | None = None
    setting_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = frozenset(name for cls in self.settings.values() for name in cls.model_fields)
        object.__setattr__(self, "setting_names", names)

    def runs(self, job: str) -> bool:
        """Whether `job` can run for this task (a task may have only its generator so far)."""
        if job == "solve":
            return self.solvable
        return job == "generate" or (self.learner is not None and self.evaluate is not None)

    def load_learner(self, options: Any) -> Any:
        assert self.learner is not None, "checked by jobs.settings.load_job"
        module, _, cls = self.learner.partition(":")
        return getattr(importlib.import_module(module), cls)(options)
