"""Settings of every job, read from environment variables only (docs/architecture.md,
'Settings').

Two phases: the common settings first (they name the TASK), then the job's class for that task:
the generic job class extended by the task's own settings for the job's stage (or, for the
pipeline, for every stage). A bad value stops the job before any work with a message naming the
variable, the value and what is allowed (`load_job`); so does a variable of another task.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ConfigError
from common.run import RunConfig
from common.storage import redact
from jobs.tasks import DEFAULT_TASK, REGISTRY, STAGES, TaskSpec, UnknownTask, get_task
from trainer.config import TrainConfig

__all__ = ["ConfigError", "load", "load_job", "settings_class"]

PRESET_NAMES = ("test", "fast", "standard", "production")


def new_run_id() -> str:
    """A fresh id that sorts by start time and is safe as a Kubernetes name."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def default_shard_index() -> int:
    """SHARD_INDEX falls back to Kubernetes' index of an Indexed Job's pod."""
    value = os.environ.get("JOB_COMPLETION_INDEX", "0")
    if not value.isdigit():
        raise ConfigError(f"JOB_COMPLETION_INDEX={value!r}: expected a non-negative integer")
    return int(value)


def default_node_index() -> int:
    """TRAIN_NODE_INDEX falls back to the Indexed train Job's pod index, else -1 (not known)."""
    return default_shard_index() if "JOB_COMPLETION_INDEX" in os.environ else -1


def preset_help() -> str:
    per_task = "; ".join(f"{t.name}: " + ", ".join(f"{p} {g}/{e}" for p, (g, e) in t.presets.items()) for t in REGISTRY.values())
    return f"Defaults for GAMES and EPOCHS by task ({per_task}); explicit variables win"


class CommonSettings(BaseSettings, RunConfig):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", validate_default=True, allow_inf_nan=False)
    # PRESET -> (GAMES, EPOCHS) of the task; set on the task's classes (settings_class).
    presets: ClassVar[dict[str, tuple[int, int]]] = {}
    # Generic settings whose default the task changes; set on the task's classes too.
    task_defaults: ClassVar[dict[str, Any]] = {}

    task: str = Field(DEFAULT_TASK, description=f"Task to train: {', '.join(REGISTRY)}")
    run_id: str = Field(default_factory=new_run_id, description="Run name; reuse one to resume it (default: a fresh sortable id)")
    preset: Literal["test", "fast", "standard", "production"] = Field("standard", description=preset_help())
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level")
    generator_bin: str = Field("", description="Path of the rust_gen binary (default: the release build, then PATH)")
    rounds: int = Field(
        1, ge=1, le=50, description="Rounds of generate and train; each later round adds SHARDS shards partly driven by the latest model"
    )

    @field_validator("task")
    @classmethod
    def _registered(cls, task: str) -> str:
        try:
            return get_task(task.lower()).name
        except UnknownTask as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, values: Any) -> Any:
        """GAMES and EPOCHS default to the task's preset, other settings to the task's defaults;
        a variable that is set wins."""
        if not isinstance(values, dict) or not cls.presets:
            return values
        for name, value in cls.task_defaults.items():
            if name in cls.model_fields:
                values.setdefault(name, value)
        preset = str(values.get("preset", "standard")).lower()
        if preset in cls.presets:
            games, epochs = cls.presets[preset]
            if "games" in cls.model_fields:
                values.setdefault("games", games)
            if "epochs" in cls.model_fields:
                values.setdefault("epochs", epochs)
        return values


class GenerateSettings(CommonSettings):
    games: int = Field(1000, ge=1, le=2**32 - 1, description="Games (or episodes) in total over all shards (default from PRESET)")
    shard_index: int = Field(
        default_factory=default_shard_index, ge=0, description="Shard this process writes (default: JOB_COMPLETION_INDEX, else 0)"
    )
    threads: int = Field(0, ge=0, le=1024, description="Generator threads per shard; 0 = every core")

    @model_validator(mode="after")
    def _shards_fit(self) -> GenerateSettings:
        if self.games < self.shards:
            raise ValueError(f"GAMES={self.games} is less than SHARDS={self.shards}: every shard needs at least one game")
        if self.shard_index >= self.shards * self.rounds:
            raise ValueError(f"SHARD_INDEX={self.shard_index} is not below SHARDS x ROUNDS = {self.shards * self.rounds}")
        return self

    def games_in_shard(self, index: int) -> int:
        """GAMES (per round) split over SHARDS as evenly as possible (the first shards take the rest)."""
        base, rest = divmod(self.games, self.shards)
        return base + (1 if index % self.shards < rest else 0)

    def round_of(self, index: int) -> int:
        """Round r holds shards r * SHARDS to (r + 1) * SHARDS - 1."""
        return index // self.shards


class TrainSettings(CommonSettings, TrainConfig):
    shard_wait_seconds: float = Field(3600.0, ge=0.0, description="How long train waits for all SHARDS manifests")
    train_processes: int = Field(0, ge=0, le=64, description="Training processes per node (torchrun, data-parallel); 0 = the node's GPUs, else 1")
    train_nodes: int = Field(1, ge=1, le=1024, description="Nodes (pods) that train together; more than 1 needs TRAIN_RDZV_ENDPOINT")
    train_rdzv_endpoint: str = Field(
        "", pattern=r"^([A-Za-z0-9.-]+:[0-9]{1,5})?$", description="HOST:PORT where the nodes meet (torchrun's c10d rendezvous); one node: none"
    )
    train_node_index: int = Field(
        default_factory=default_node_index,
        ge=-1,
        description="This node's index among TRAIN_NODES; node 0 hosts the rendezvous (default: JOB_COMPLETION_INDEX, else -1: torchrun decides)",
    )
    round: int = Field(-1, ge=-1, description="Train on the shards of rounds 0..ROUND; -1: of every round (ROUNDS - 1)")

    @model_validator(mode="after")
    def _round_exists(self) -> TrainSettings:
        if self.round >= self.rounds:
            raise ValueError(f"ROUND={self.round} is not below ROUNDS={self.rounds}")
        if self.train_nodes > 1 and not self.train_rdzv_endpoint and not self.endpoint_named_by_controller():
            raise ValueError(f"TRAIN_NODES={self.train_nodes} needs TRAIN_RDZV_ENDPOINT (HOST:PORT of the first node) for the nodes to meet")
        if self.train_node_index >= self.train_nodes:
            raise ValueError(f"TRAIN_NODE_INDEX={self.train_node_index} is not below TRAIN_NODES={self.train_nodes}")
        return self

    def endpoint_named_by_controller(self) -> bool:
        """Whether a controller sets TRAIN_RDZV_ENDPOINT for the train pods (a cluster pipeline)."""
        return False

    def data_shards(self) -> int:
        """How many shards (0..n-1) this training reads."""
        last = self.rounds - 1 if self.round < 0 else self.round
        return (last + 1) * self.shards


class EvaluateSettings(CommonSettings):
    eval_games: int = Field(1000, ge=2, le=10_000_000, description="Games (or episodes) per opponent")


QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"


class PipelineSettings(GenerateSettings, TrainSettings, EvaluateSettings):
    runner: Literal["local", "k8s"] = Field("local", description="local: processes on this machine; k8s: Jobs in the current context")
    k8s_namespace: str = Field("ludus", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="Namespace of the stage Jobs (RUNNER=k8s)")
    gen_image: str = Field("ghcr.io/ludus-ai/ludus-gen:0.1.0", min_length=1, description="Generator image (RUNNER=k8s)")
    train_image: str = Field("ghcr.io/ludus-ai/ludus-train:0.1.0", min_length=1, description="Trainer image, also runs evaluate (RUNNER=k8s)")
    image_pull_secret: str = Field(
        "",
        pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$",
        description="Secret (docker-registry type) the pods pull the images with; empty: none (RUNNER=k8s)",
    )
    generate_parallelism: int = Field(0, ge=0, description="Generator pods at once; 0 = SHARDS (RUNNER=k8s)")
    generate_cpu: str = Field("2", pattern=QUANTITY_PATTERN, description="CPU request and limit of a generator pod (RUNNER=k8s)")
    generate_memory: str = Field("2Gi", pattern=QUANTITY_PATTERN, description="Memory of a generator pod (RUNNER=k8s)")
    train_gpus: int = Field(1, ge=0, le=16, description="GPUs of the train pod; 0 trains on CPU (RUNNER=k8s)")
    train_cpu: str = Field("4", pattern=QUANTITY_PATTERN, description="CPU request of the train pod (RUNNER=k8s)")
    train_memory: str = Field("24Gi", pattern=QUANTITY_PATTERN, description="Memory of the train pod (RUNNER=k8s)")
    evaluate_cpu: str = Field("2", pattern=QUANTITY_PATTERN, description="CPU request and limit of the evaluate pod (RUNNER=k8s)")
    evaluate_memory: str = Field("2Gi", pattern=QUANTITY_PATTERN, description="Memory of the evaluate pod (RUNNER=k8s)")
    job_ttl_seconds: int = Field(86400, ge=0, description="Finished stage Jobs are deleted after this (RUNNER=k8s)")

    def endpoint_named_by_controller(self) -> bool:
        """On a cluster the controller names the first train pod as the endpoint."""
        return self.runner == "k8s"


class TrialSettings(TrainSettings):
    # A trial trains on one node: JOB_COMPLETION_INDEX numbers its trial (SWEEP_TRIAL + index), not a node.
    train_node_index: int = Field(-1, ge=-1, description="This node's index among TRAIN_NODES (a trial: -1, one node)")
    sweep_trial: int = Field(
        -1, ge=-1, description="The sweep's trial this process trains (the sweep sets it); on Kubernetes plus JOB_COMPLETION_INDEX"
    )


class SweepSettings(PipelineSettings):
    trials: int = Field(8, ge=1, le=10_000, description="Trials of the sweep in all (a rerun counts the finished ones)")
    parallel: int = Field(2, ge=1, le=1024, description="Trials at once: processes (RUNNER=local, sharing the cores) or pods of one Indexed Job")
    sweep_metric: Literal["val_loss", "strength"] = Field(
        "val_loss",
        description="What the sweep optimises: val_loss (lowest), or strength (the task's evaluation figure, highest; evaluates each trial)",
    )
    sweep_space: str = Field(
        "", description="Settings to search and their ranges (name=low..high[:log] or name=a|b|c, comma-separated); empty: the task's"
    )
    sweep_pruner: Literal["median", "halving", "none"] = Field(
        "median", description="Stops hopeless trials from their per-epoch validation loss: median, halving (successive halving), none"
    )

    @field_validator("sweep_space")
    @classmethod
    def _space_parses(cls, value: str) -> str:
        if value.strip():
            from jobs.space import parse_space

            try:
                parse_space(value)
            except ConfigError as e:
                raise ValueError(str(e).removeprefix("SWEEP_SPACE: ")) from None
        return value


class SolveSettings(CommonSettings):
    pieces: int = Field(7, ge=1, le=7, description="Pieces a side of the game to solve (7: the game; fewer: small games for tests)")
    threads: int = Field(0, ge=0, le=1024, description="Solver threads; 0 = every core")


JOB_CLASSES: dict[str, type[CommonSettings]] = {
    "generate": GenerateSettings,
    "train": TrainSettings,
    "evaluate": EvaluateSettings,
    "pipeline": PipelineSettings,
    "solve": SolveSettings,
    "sweep": SweepSettings,
    "trial": TrialSettings,
}


@cache
def settings_class(job: str, task: str) -> type[CommonSettings]:
    """The settings of `job` for `task`: the generic class extended by the task's own classes."""
    spec = get_task(task)
    stages = STAGES if job in ("pipeline", "sweep") else ("train",) if job == "trial" else (job,)
    parts = tuple(spec.settings[stage] for stage in stages if stage in spec.settings)
    name = f"{spec.name.capitalize()}{job.capitalize()}Settings"
    return type(name, (JOB_CLASSES[job], *parts), {"presets": spec.presets, "task_defaults": spec.defaults, "__module__": __name__})


def all_setting_names() -> set[str]:
    """Every variable of every job and task (lower case)."""
    return (
        set(SweepSettings.model_fields)
        | set(TrialSettings.model_fields)
        | set(SolveSettings.model_fields)
        | {name for spec in REGISTRY.values() for name in spec.setting_names}
    )


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Reads `cls` from the environment, turning validation errors into one ConfigError that
    names each variable, its value and what is allowed."""
    try:
        return cls()
    except ConfigError:
        raise
    except ValidationError as e:
        lines = []
        for err in e.errors():
            if not err["loc"]:  # a check across fields: its message names the variables (never print the input: it is every setting)
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = str(err["loc"][0]).upper()
            value = os.environ.get(name, err.get("input"))
            if name == "STORAGE_URL" and isinstance(value, str):
                value = redact(value)
            lines.append(f"{name}={value!r}: {str(err['msg']).removeprefix('Value error, ')}")
        raise ConfigError("; ".join(lines)) from None


def check_other_tasks_variables(spec: TaskSpec) -> None:
    """A variable that only another task reads is a mistake (a half-edited environment, say)."""
    set_here = {name.lower(): name for name in os.environ}
    ours = all_setting_names() - {name for other in REGISTRY.values() if other is not spec for name in other.setting_names}
    ours |= spec.setting_names
    for other in REGISTRY.values():
        for name in sorted(other.setting_names - ours):
            if name in set_here:
                variable = set_here[name]
                raise ConfigError(
                    f"{variable}={os.environ[variable]!r}: {name.upper()} is a setting of TASK={other.name} ({other.title}), "
                    f"not of TASK={spec.name}; unset it"
                )


def misspellings(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(variable, setting) for each variable that is not a setting but nearly spells one."""
    names = sorted(all_setting_names())
    found = []
    for variable in sorted(environ):
        key = variable.lower()
        if key in names or not re.fullmatch(r"[A-Z][A-Z0-9_]{3,}", variable):
            continue
        match = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
        if match:
            found.append((variable, match[0].upper()))
    return found


def warn_about_misspellings(environ: Mapping[str, str] | None = None) -> list[str]:
    """A variable that nearly spells a setting (EPOHCS for EPOCHS) is most likely a typo that would
    otherwise be ignored: say so on stderr. Returns the warnings."""
    found = misspellings(os.environ if environ is None else environ)
    warnings = [f"warning: {v} is not a setting; did you mean {s}? (it is ignored)" for v, s in found]
    for line in warnings:
        print(line, file=sys.stderr)
    return warnings


def load_job(job: str) -> CommonSettings:
    """The settings of `job`, in two phases: the common ones (TASK), then the task's job class."""
    warn_about_misspellings()
    common = load(CommonSettings)
    spec = get_task(common.task)
    if not spec.runs(job):
        if job == "solve":
            raise ConfigError(f"TASK={spec.name!r}: {spec.title} has no exact solver; the solve job runs TASK=ur")
        raise ConfigError(f"TASK={spec.name!r}: {spec.title} has no trainer or evaluator yet, so the {job} job cannot run it; its generate job can")
    if common.rounds > 1 and spec.student_args is None:
        raise ConfigError(f"ROUNDS={common.rounds}: {spec.title} has no student-driven generation, so it runs one round only; unset ROUNDS")
    check_other_tasks_variables(spec)
    return load(settings_class(job, spec.name))


def ordered_fields(cls: type[BaseSettings]) -> list[str]:
    """The settings of `cls` in reading order: the common ones, then the job's, then the task's."""
    common = [name for name in CommonSettings.model_fields if name in cls.model_fields]
    jobs = set(SweepSettings.model_fields) | set(TrialSettings.model_fields)
    generic = [name for name in cls.model_fields if name in jobs and name not in common]
    return common + generic + [name for name in cls.model_fields if name not in jobs]


def describe(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(VARIABLE, default, meaning) for every setting, for --help."""
    rows = []
    for name in ordered_fields(cls):
        field = cls.model_fields[name]
        default = "(computed)" if field.default_factory is not None else repr(cls.task_defaults.get(name, field.default))  # type: ignore[attr-defined]
        rows.append((name.upper(), default, field.description or ""))
    return rows
