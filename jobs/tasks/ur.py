"""The Royal Game of Ur for the jobs: its settings, presets, generator arguments, artifacts,
headline metrics and evaluator (matches against the expectiminimax teacher and the champion).
Contract: docs/ur.md."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from common.errors import JobError
from common.processes import run_child
from common.storage import Store, sha256_file, solution_keys
from jobs.tasks.spec import Evaluation, Metric, Table, TaskSpec
from trainer.tasks.ur.config import UrTrainOptions

OPPONENT_PATTERN = re.compile(r"^(random|greedy|emm:[1-6])$")


class UrGenerateSettings(BaseModel):
    teacher: Literal["emm", "perfect"] = Field(
        "emm", description="emm: the depth-DEPTH search; perfect: the solved game (the solve job's table in the store)"
    )
    depth: int = Field(3, ge=1, le=6, description="Teacher search depth in plies")
    exploration: float = Field(0.05, ge=0.0, le=1.0, description="Probability of a random move instead of the teacher's")


class UrTrainSettings(UrTrainOptions):
    pass


def opponents_of(value: str) -> list[str]:
    return [o.strip() for o in value.split(",") if o.strip()]


class UrEvaluateSettings(BaseModel):
    eval_opponents: str = Field("emm:1,emm:2,emm:3", description="Comma-separated opponents: random, greedy, emm:D (D in 1..6)")
    # guided beats value only where the policy is good and the values are win probabilities (the
    # perfect teacher); on the default emm:3 pipeline it loses 2 points against emm:3 (docs/results/ur.md).
    eval_player: Literal["value", "guided", "policy", "legacy"] = Field(
        "value", description="How the new model and the champion play: value, guided (value with the policy as a prior), policy, legacy"
    )
    eval_perfect: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Measure every player against perfect play with the solve job's table: auto (when the store holds it), on (required), off",
    )
    promotion_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Promote if the lower 95% bound of the win rate against the champion is above this"
    )

    @field_validator("eval_opponents")
    @classmethod
    def _known_opponents(cls, value: str) -> str:
        for opponent in opponents_of(value):
            if not OPPONENT_PATTERN.match(opponent):
                raise ValueError(f"{opponent!r} is not an opponent: expected random, greedy or emm:D with D in 1..6")
        if not opponents_of(value):
            raise ValueError("expected at least one opponent")
        return value


def win_rate_against_emm3(report: dict[str, Any]) -> float:
    """The sweep's strength figure: the new model's win rate against the depth-3 teacher."""
    for result in report["results"]:
        if result["opponent"] == "emm:3":
            return float(result["a_win_rate"])
    raise JobError("the evaluation has no match against emm:3: with SWEEP_METRIC=strength, EVAL_OPPONENTS must include emm:3")


def generator_args(s: Any, games: int) -> list[str]:
    return ["ur", "generate", "--games", str(games), "--depth", str(s.depth), "--exploration", str(s.exploration)]


def shard_settings(s: Any) -> dict[str, Any]:
    return {"teacher": s.teacher, "depth": s.depth, "exploration": s.exploration, "games_total": s.games, "shards": s.shards}


def has_table(store: Store) -> bool:
    return store.exists(solution_keys("ur", 7)[1])


def fetch_table(store: Store, folder: Path, needed_by: str) -> list[str]:
    """The solved game's table from the store into `folder`, its digest checked, as `--table`."""
    data_key, manifest_key = solution_keys("ur", 7)
    if not store.exists(manifest_key):
        raise JobError(
            f"{needed_by} needs the solved game, but {store.display(manifest_key)} does not exist: "
            "run the solve job first (make solve, or kubectl apply -f k8s/ur/optional/)"
        )
    manifest = store.read_json(manifest_key)
    path = folder / Path(data_key).name
    store.get_file(data_key, path)
    if sha256_file(path) != manifest.get("sha256"):
        raise JobError(f"{store.display(data_key)} does not match the sha256 of {store.display(manifest_key)}: run the solve job again")
    return ["--table", str(path)]


def teacher_table(s: Any, store: Store, folder: Path) -> list[str]:
    """For TEACHER=perfect: the solved game's table."""
    return fetch_table(store, folder, "TEACHER=perfect") if s.teacher == "perfect" else []


def evaluator_table(s: Any, store: Store, folder: Path) -> list[str]:
    """The solved game's table when EVAL_PERFECT asks for it (auto: when the store holds one)."""
    if s.eval_perfect == "off" or (s.eval_perfect == "auto" and not has_table(store)):
        return []
    return fetch_table(store, folder, "EVAL_PERFECT=on")


def play(binary: str, a: str, b: str, games: int, seed: int, inputs: list[str]) -> dict[str, Any]:
    cmd = [binary, "ur", "match", "--a", a, "--b", b, "--games", str(games), "--seed", str(seed), *inputs]
    proc = run_child(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise JobError(f"rust_gen ur match --b {b} exited with code {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def percent_interval(row: dict[str, Any]) -> str:
    low, high = row["a_win_rate_ci95"]
    return f"{low:.1%} - {high:.1%}"


def loss_cell(key: str) -> Any:
    return lambda row: f"{row[key]:.4f}" if row.get(key) is not None else ""


PLAYER_WAYS = ("guided", "value", "policy", "legacy")


def perfect_play(s: Any, binary: str, model: Path, inputs: list[str]) -> Table:
    """Each player against `perfect` (the --table in `inputs`): its win rate, and the win
    probability it gives away per decision against the best move."""
    players = [(f"{way}:model", f"{way}:{model}") for way in PLAYER_WAYS]
    players += [(o, o) for o in opponents_of(s.eval_opponents)]
    rows = []
    for label, spec in players:
        print(f"evaluate: {s.eval_games} games of {label} against perfect play", flush=True)
        rows.append({**play(binary, spec, "perfect", s.eval_games, s.seed, inputs), "player": label})
    return Table(
        key="perfect_play",
        title="Against perfect play",
        intro=(
            "Each player against `perfect` (the solved game), seats alternating. Loss per decision: the win "
            "probability a player's move gives away against the best move, averaged over its decisions "
            "(0 is perfect play)."
        ),
        rows=rows,
        columns=[
            ("player", lambda r: r["player"]),
            ("games", lambda r: str(r["games"])),
            ("win rate against perfect", lambda r: f"{r['a_win_rate']:.1%}"),
            ("95% interval", percent_interval),
            ("loss per decision", loss_cell("a_loss_per_decision")),
        ],
    )


def evaluate(s: Any, binary: str, model: Path, champion: Path | None, inputs: list[str]) -> Evaluation:
    """EVAL_GAMES games (seats alternate) against each opponent and the champion (both models
    play as EVAL_PLAYER); with the solved game's table in `inputs`, every player against perfect
    play as well."""
    opponents = [(o, o) for o in opponents_of(s.eval_opponents)]
    if champion is not None:
        opponents.append(("champion", f"{s.eval_player}:{champion}"))
    results = []
    for label, spec in opponents:
        print(f"evaluate: {s.eval_games} games against {label}", flush=True)
        result = play(binary, f"{s.eval_player}:{model}", spec, s.eval_games, s.seed, inputs)
        results.append({**result, "opponent": label, "label": label, "a": f"{s.eval_player}:model", "b": label})
    against = next((r for r in results if r["opponent"] == "champion"), None)
    columns = [
        ("opponent", lambda r: r["label"]),
        ("games", lambda r: str(r["games"])),
        ("wins", lambda r: str(r["a_wins"])),
        ("losses", lambda r: str(r["b_wins"])),
        ("unfinished", lambda r: str(r["unfinished"])),
        ("win rate", lambda r: f"{r['a_win_rate']:.1%}"),
        ("95% interval", percent_interval),
        ("us/move (model)", lambda r: f"{r['a_us_per_move']:.1f}"),
        ("us/move (opponent)", lambda r: f"{r['b_us_per_move']:.1f}"),
    ]
    if inputs:
        columns += [("loss/decision (model)", loss_cell("a_loss_per_decision")), ("loss/decision (opponent)", loss_cell("b_loss_per_decision"))]
    return Evaluation(
        player=s.eval_player,
        intro=f"The new model plays as `{s.eval_player}:`; seats alternate; intervals are 95% Wilson intervals.",
        results=results,
        score="a_win_rate",
        interval="a_win_rate_ci95",
        score_label="win rate of the new model (95% Wilson interval)",
        reference=0.5,
        reference_label="an even match (50%)",
        columns=columns,
        champion_bound=against["a_win_rate_ci95"][0] if against else None,
        tables=(perfect_play(s, binary, model, inputs),) if inputs else (),
    )


def spec() -> TaskSpec:
    return TaskSpec(
        name="ur",
        title="the Royal Game of Ur",
        episodes="games",
        presets={"test": (100, 10), "fast": (500, 25), "standard": (1000, 37), "production": (2000, 75)},
        # Found by a strength sweep (docs/results/ur.md, "Sweeps"): 57.1% against emm:3 over 18,000
        # games, against 55.1% for 50 epochs at 0.002, in three quarters of the training time.
        defaults={"learning_rate": 0.004546},
        settings={"generate": UrGenerateSettings, "train": UrTrainSettings, "evaluate": UrEvaluateSettings},
        generator_args=generator_args,
        shard_settings=shard_settings,
        artifacts=("weights.json", "compat_weights.json"),
        headline=(Metric("val_value_mse", "value MSE", ".4f"), Metric("val_policy_accuracy", "policy accuracy", ".1%")),
        evaluate=evaluate,
        learner="trainer.tasks.ur.learner:UrLearner",
        promotion="the lower 95% bound of the win rate against the champion",
        solvable=True,
        cluster_settings={"DEPTH": "3", "EVAL_GAMES": "2000"},
        sweep_space="learning_rate=0.0005..0.008:log,batch_size=256|512|1024|2048,epochs=10..50,dropout=0..0.2,illegal_mass_weight=0..5",
        strength=("win rate against emm:3", win_rate_against_emm3),
        generator_inputs=teacher_table,
        evaluator_inputs=evaluator_table,
    )
