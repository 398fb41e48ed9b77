"""The boids predator for the jobs: its settings, presets, generator arguments, artifacts,
headline metrics and evaluator (paired matches of the network against the teachers, `still` and
the champion on both protocols). Contract: docs/predator.md."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from common.errors import JobError
from common.processes import run_child
from jobs.tasks.spec import Evaluation, Metric, TaskSpec
from trainer.tasks.predator.config import PredatorTrainOptions

PROTOCOLS = ("default", "legacy")
# The planner is not played by default: its catch rate on the fixed evaluation episodes does not depend
# on the model, and it costs about a minute of a 15-minute default run (docs/results/predator.md).
DEFAULT_OPPONENTS = "pursuit,still"
# The planner's options and their ranges, as `rust_gen` reads them (rust_gen/src/predator/planner.rs):
# checked here too so that a bad TEACHER stops the job before any work, with exit code 2.
PLANNER_KEYS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "directions": ("an integer >= 0", str.isdigit),
    "chase": ("0 or 1", lambda v: v in ("0", "1")),
    "targets": ("an integer >= 0", str.isdigit),
    "horizon": ("an integer >= 1", lambda v: v.isdigit() and int(v) >= 1),
    "replan": ("an integer >= 1", lambda v: v.isdigit() and int(v) >= 1),
    "radius": ("a number of pixels > 0", lambda v: re.fullmatch(r"[0-9]+(\.[0-9]+)?", v) is not None and float(v) > 0),
    "follow": ("0 or 1", lambda v: v in ("0", "1")),
    "terminal": ("time or distance", lambda v: v in ("time", "distance")),
}


def check_teacher(text: str) -> str:
    """`pursuit`, `planner` or `planner:KEY=VALUE:...` with each value in its range."""
    shape = f"expected pursuit, planner or planner:KEY=VALUE:... with keys {', '.join(PLANNER_KEYS)} (planner:replan=1:follow=0)"
    name, _, options = text.partition(":")
    if name == "pursuit" and not options:
        return text
    if name != "planner" or (text != "planner" and not options):
        raise ValueError(shape)
    chosen = {"directions": "8", "chase": "1", "targets": "0"}  # the candidates' defaults
    for option in options.split(":") if options else []:
        key, eq, value = option.partition("=")
        if key not in PLANNER_KEYS or not eq:
            raise ValueError(f"{option!r}: {shape}")
        allowed, ok = PLANNER_KEYS[key]
        if not ok(value):
            raise ValueError(f"planner option {key}={value}: expected {allowed}")
        chosen[key] = value
    if (int(chosen["directions"]), chosen["chase"], int(chosen["targets"])) == (0, "0", 0):
        raise ValueError("a planner needs candidates: directions >= 1, chase=1 or targets >= 1")
    return text


# The teacher that trains the best student: the planner before 2026-12-07. The rebuilt `planner`
# catches more (0.858 against 0.784), but the network trained on its labels caught 23.3% where
# this teacher's caught 56.8% (same 1,200 episodes, same recipe; docs/results/predator.md).
DEFAULT_TEACHER = "planner:directions=0:chase=0:targets=12:horizon=150:replan=3:radius=500:terminal=distance"


class PredatorGenerateSettings(BaseModel):
    teacher: str = Field(
        DEFAULT_TEACHER,
        description="The teacher that labels every step (and drives it, but for STUDENT_SHARE): pursuit, planner or planner:KEY=VALUE:...",
    )
    steps: int = Field(1500, ge=1, le=100_000, description="Steps per episode at most")
    max_boids: int = Field(50, ge=1, le=200, description="Most boids in an episode (1..MAX_BOIDS drawn per episode)")
    student_share: float = Field(0.5, ge=0.0, le=1.0, description="Share of the episodes of rounds after the first that the latest model drives")

    @field_validator("teacher")
    @classmethod
    def _teacher(cls, text: str) -> str:
        return check_teacher(text)


class PredatorTrainSettings(PredatorTrainOptions):
    pass


def check_opponents(value: str) -> str:
    """A comma-separated list of `still`, `pursuit`, `planner` or `planner:KEY=VALUE:...`."""
    opponents = [o.strip() for o in value.split(",") if o.strip()]
    if not opponents:
        raise ValueError("expected at least one opponent")
    for opponent in opponents:
        if opponent != "still":
            try:
                check_teacher(opponent)
            except ValueError as error:
                raise ValueError(f"{opponent!r} is not an opponent: expected still, pursuit, planner or planner:KEY=VALUE:... ({error})") from None
    return ",".join(opponents)


class PredatorEvaluateSettings(BaseModel):
    eval_opponents: str = Field(
        DEFAULT_OPPONENTS,
        description="Comma-separated opponents, each on the same episodes: still, pursuit, planner, planner:KEY=VALUE:... (the planner "
        "costs most of an evaluation's time)",
    )
    eval_steps: int = Field(1500, ge=1, le=100_000, description="Steps per evaluation episode at most (default protocol)")
    eval_max_boids: int = Field(50, ge=1, le=200, description="Most boids of a default-protocol evaluation episode")
    promotion_threshold: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="Promote if the lower 95% bound of the paired catch-rate gain over the champion (default protocol) exceeds this",
    )

    @field_validator("eval_opponents")
    @classmethod
    def _opponents(cls, value: str) -> str:
        return check_opponents(value)


def generator_args(s: Any, episodes: int) -> list[str]:
    return ["predator", "generate", "--episodes", str(episodes), "--teacher", s.teacher, "--steps", str(s.steps), "--max-boids", str(s.max_boids)]


def student_args(s: Any, model: Path) -> list[str]:
    return ["--student", str(model), "--student-share", str(s.student_share)]


def shard_settings(s: Any) -> dict[str, Any]:
    return {"teacher": s.teacher, "steps": s.steps, "max_boids": s.max_boids, "episodes_total": s.games, "shards": s.shards}


def play(binary: str, players: list[str], protocol: str, s: Any) -> dict[str, Any]:
    cmd = [binary, "predator", "match", "--players", ",".join(players), "--protocol", protocol, "--episodes", str(s.eval_games)]
    cmd += ["--steps", str(s.eval_steps), "--max-boids", str(s.eval_max_boids), "--seed", str(s.seed)]
    proc = run_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise JobError(f"rust_gen predator match --protocol {protocol} exited with code {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def rows(report: dict[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    """One row per player; `gain` is the new model's catch rate minus the player's (paired), the
    negation of the match's difference (player - first player)."""
    out = []
    for label, player in zip(labels, report["players"], strict=True):
        low, high = player["paired_difference_ci95"]
        out.append(
            {
                **player,
                "protocol": report["protocol"],
                "episodes": report["episodes"],
                "opponent": label,
                "label": f"{report['protocol']}: {label}",
                "gain": -player["paired_difference"],
                "gain_ci95": [-high, -low],
            }
        )
    return out


def default_catch_rate(report: dict[str, Any]) -> float:
    """The sweep's strength figure: the new model's catch rate on the default protocol."""
    for result in report["results"]:
        if result["opponent"] == "new model" and result["protocol"] == "default":
            return float(result["catch_rate"])
    raise JobError("the evaluation has no default-protocol result for the new model")


def gain_cell(row: dict[str, Any]) -> str:
    if row["opponent"] == "new model":
        return ""
    low, high = row["gain_ci95"]
    return f"{row['gain']:+.1%} ({low:+.1%} to {high:+.1%})"


def evaluate(s: Any, binary: str, model: Path, champion: Path | None, inputs: list[str]) -> Evaluation:
    """EVAL_GAMES evaluation episodes per protocol, every player on the same ones (the predator
    has no evaluator inputs: `inputs` is empty)."""
    opponents = s.eval_opponents.split(",")
    players, labels = [f"net:{model}", *opponents], ["new model", *opponents]
    if champion is not None:
        players.append(f"net:{champion}")
        labels.append("champion")
    results = []
    for protocol in PROTOCOLS:
        print(f"evaluate: {s.eval_games} {protocol} episodes for {', '.join(labels)}", flush=True)
        results += rows(play(binary, players, protocol, s), labels)
    against = next((r for r in results if r["opponent"] == "champion" and r["protocol"] == "default"), None)
    return Evaluation(
        player="net",
        intro=(
            "Every player plays the same evaluation episodes (paired). Catch rate: the share of an episode's boids caught, "
            "averaged over episodes, with a 95% interval; gain: the new model's catch rate minus the player's, paired."
        ),
        results=results,
        score="catch_rate",
        interval="catch_rate_ci95",
        score_label="catch rate (95% interval)",
        reference=results[0]["catch_rate"],
        reference_label=f"{results[0]['label']}: {results[0]['catch_rate']:.1%}",
        columns=[
            ("player", lambda r: r["label"]),
            ("episodes", lambda r: str(r["episodes"])),
            ("catch rate", lambda r: f"{r['catch_rate']:.1%}"),
            ("95% interval", lambda r: f"{r['catch_rate_ci95'][0]:.1%} - {r['catch_rate_ci95'][1]:.1%}"),
            ("gain of the new model", gain_cell),
            ("cleared", lambda r: str(r["episodes_cleared"])),
            ("us/decision", lambda r: f"{r['us_per_decision']:.1f}"),
        ],
        champion_bound=against["gain_ci95"][0] if against else None,
    )


def spec() -> TaskSpec:
    return TaskSpec(
        name="predator",
        title="the boids predator",
        episodes="episodes",
        presets={"test": (20, 3), "fast": (150, 6), "standard": (650, 4), "production": (3000, 20)},
        # Learning rate 0.004: +6 points over 0.002 on 4 epochs of 700 episodes (docs/results/predator.md).
        defaults={"eval_games": 100, "learning_rate": 0.004},
        settings={"generate": PredatorGenerateSettings, "train": PredatorTrainSettings, "evaluate": PredatorEvaluateSettings},
        generator_args=generator_args,
        shard_settings=shard_settings,
        artifacts=("weights.json", "browser_weights.json", "predator_model.js"),
        headline=(Metric("val_action_mse", "action MSE", ".4f"), Metric("val_angle_deg", "mean angle to the teacher", ".1f")),
        evaluate=evaluate,
        learner="trainer.tasks.predator.learner:PredatorLearner",
        promotion="the lower 95% bound of the paired catch-rate gain over the champion (default protocol)",
        student_args=student_args,
        cluster_settings={"TEACHER": DEFAULT_TEACHER, "EVAL_GAMES": "200"},
        sweep_space="learning_rate=0.0005..0.008:log,batch_size=128|256|512,d_model=32|48|64,n_layers=2..4,epochs=3..10,mirror=0|1",
        strength=("catch rate, default protocol", default_catch_rate),
    )
