"""Settings of every job, read from environment variables only (shared/design.md, 'Settings').

One class per job; the pipeline's class is the union. A bad value stops the job before any work
with a message naming the variable, the value and what is allowed (`load`).
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import fsspec
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(ValueError):
    """A setting with a value that is not allowed; the message names the variable."""


# Presets our users know from the old system: (GAMES, EPOCHS).
PRESETS: dict[str, tuple[int, int]] = {
    "test": (100, 10),
    "fast": (500, 25),
    "standard": (1000, 50),
    "production": (2000, 75),
}

OPPONENT_PATTERN = re.compile(r"^(random|greedy|emm:[1-6])$")
RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")


def new_run_id() -> str:
    """A fresh id that sorts by start time and is safe as a Kubernetes name."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def default_shard_index() -> int:
    """SHARD_INDEX falls back to Kubernetes' index of an Indexed Job's pod."""
    value = os.environ.get("JOB_COMPLETION_INDEX", "0")
    if not value.isdigit():
        raise ConfigError(f"JOB_COMPLETION_INDEX={value!r}: expected a non-negative integer")
    return int(value)


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", validate_default=True)

    storage_url: str = Field("./store", description="Object store root: a folder, s3://bucket/prefix, or any fsspec URL")
    task: Literal["ur"] = Field("ur", description="Game to train (ur; predator is not built yet)")
    run_id: str = Field(default_factory=new_run_id, description="Run name; reuse one to resume it (default: a fresh sortable id)")
    seed: int = Field(0, ge=0, description="Seed of the run: generation, split, initialisation, batches")
    shards: int = Field(2, ge=1, le=99_999, description="Number of generation shards (one per process or Kubernetes index)")
    preset: Literal["test", "fast", "standard", "production"] = Field(
        "standard", description="Defaults for GAMES and EPOCHS: test 100/10, fast 500/25, standard 1000/50, production 2000/75"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level")
    generator_bin: str = Field("", description="Path of the rust_gen binary (default: the release build, then PATH)")

    @field_validator("storage_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if "://" not in url:
            return str(Path(url).expanduser().resolve())
        scheme = url.split("://", 1)[0]
        if scheme == "file":
            return str(Path(url[len("file://") :]).resolve())
        if scheme not in fsspec.available_protocols():
            raise ValueError(f"unknown scheme {scheme!r}: expected a folder path or an fsspec URL such as s3://bucket/prefix")
        return url

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        if not RUN_ID_PATTERN.match(run_id):
            raise ValueError("expected 1-63 characters of a-z, 0-9, '.', '-', starting with a letter or digit")
        return run_id

    @field_validator("task", mode="before")
    @classmethod
    def _task_available(cls, task: Any) -> Any:
        if isinstance(task, str) and task.lower() == "predator":
            raise ValueError("the predator task is not built yet; allowed: ur")
        return task

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, values: Any) -> Any:
        """GAMES and EPOCHS default to the preset's; a variable that is set wins."""
        if not isinstance(values, dict):
            return values
        preset = str(values.get("preset", "standard")).lower()
        if preset in PRESETS:
            games, epochs = PRESETS[preset]
            if "games" in cls.model_fields:
                values.setdefault("games", games)
            if "epochs" in cls.model_fields:
                values.setdefault("epochs", epochs)
        return values


class GenerateSettings(CommonSettings):
    games: int = Field(1000, ge=1, description="Games in total over all shards (default from PRESET)")
    shard_index: int = Field(
        default_factory=default_shard_index, ge=0, description="Shard this process writes (default: JOB_COMPLETION_INDEX, else 0)"
    )
    depth: int = Field(3, ge=1, le=6, description="Teacher search depth in plies")
    exploration: float = Field(0.05, ge=0.0, le=1.0, description="Probability of a random move instead of the teacher's")
    threads: int = Field(0, ge=0, description="Generator threads per shard; 0 = every core")

    @model_validator(mode="after")
    def _shards_fit(self) -> GenerateSettings:
        if self.games < self.shards:
            raise ValueError(f"GAMES={self.games} is less than SHARDS={self.shards}: every shard needs at least one game")
        if self.shard_index >= self.shards:
            raise ValueError(f"SHARD_INDEX={self.shard_index} is not below SHARDS={self.shards}")
        return self

    def games_in_shard(self, index: int) -> int:
        """GAMES split over SHARDS as evenly as possible (the first shards take the rest)."""
        base, rest = divmod(self.games, self.shards)
        return base + (1 if index < rest else 0)


class TrainSettings(CommonSettings):
    epochs: int = Field(50, ge=1, description="Maximum training epochs (default from PRESET)")
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0, description="Peak AdamW learning rate")
    batch_size: int = Field(1024, ge=1, le=1 << 20, description="Samples per optimisation step")
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay")
    validation_split: float = Field(0.1, gt=0.0, lt=0.5, description="Share of GAMES held out for validation (split by game)")
    patience: int = Field(8, ge=1, description="Epochs without a better validation loss before stopping")
    device: Literal["auto", "cuda", "mps", "cpu"] = Field("auto", description="auto picks CUDA, then Apple MPS, then CPU")
    mixed_precision: bool = Field(True, description="bf16 autocast on CUDA")
    compile: bool = Field(False, description="torch.compile the networks (CUDA)")
    soft_policy_temperature: float = Field(0.0, ge=0.0, description="0: one-hot policy targets; >0: softmax of move values / T")
    shard_wait_seconds: float = Field(3600.0, ge=0.0, description="How long train waits for all SHARDS manifests")


class EvaluateSettings(CommonSettings):
    eval_games: int = Field(1000, ge=2, description="Games per opponent (seats alternate)")
    eval_opponents: str = Field("emm:1,emm:2,emm:3", description="Comma-separated opponents: random, greedy, emm:D (D in 1..6)")
    eval_player: Literal["value", "policy", "legacy"] = Field("value", description="How the new model plays")
    promotion_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Promote if the lower 95% bound against the champion is above this")

    @field_validator("eval_opponents")
    @classmethod
    def _known_opponents(cls, value: str) -> str:
        for opponent in cls.opponents_of(value):
            if not OPPONENT_PATTERN.match(opponent):
                raise ValueError(f"{opponent!r} is not an opponent: expected random, greedy or emm:D with D in 1..6")
        if not cls.opponents_of(value):
            raise ValueError("expected at least one opponent")
        return value

    @staticmethod
    def opponents_of(value: str) -> list[str]:
        return [o.strip() for o in value.split(",") if o.strip()]


QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"


class PipelineSettings(GenerateSettings, TrainSettings, EvaluateSettings):
    runner: Literal["local", "k8s"] = Field("local", description="local: processes on this machine; k8s: Jobs in the current context")
    k8s_namespace: str = Field("ludus", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="Namespace of the stage Jobs (RUNNER=k8s)")
    gen_image: str = Field("ghcr.io/ludus-ai/ludus-gen:0.1.0", min_length=1, description="Generator image (RUNNER=k8s)")
    train_image: str = Field("ghcr.io/ludus-ai/ludus-train:0.1.0", min_length=1, description="Trainer image, also runs evaluate (RUNNER=k8s)")
    generate_parallelism: int = Field(0, ge=0, description="Generator pods at once; 0 = SHARDS (RUNNER=k8s)")
    generate_cpu: str = Field("2", pattern=QUANTITY_PATTERN, description="CPU request and limit of a generator pod (RUNNER=k8s)")
    generate_memory: str = Field("2Gi", pattern=QUANTITY_PATTERN, description="Memory of a generator pod (RUNNER=k8s)")
    train_gpus: int = Field(1, ge=0, le=16, description="GPUs of the train pod; 0 trains on CPU (RUNNER=k8s)")
    train_memory: str = Field("24Gi", pattern=QUANTITY_PATTERN, description="Memory of the train pod (RUNNER=k8s)")
    job_ttl_seconds: int = Field(86400, ge=0, description="Finished stage Jobs are deleted after this (RUNNER=k8s)")


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
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            value = os.environ.get(name, err.get("input"))
            lines.append(f"{name}={value!r}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from None


def describe(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(VARIABLE, default, meaning) for every setting, for --help and the README."""
    rows = []
    for name, field in cls.model_fields.items():
        default = "(computed)" if field.default_factory is not None else repr(field.default)
        rows.append((name.upper(), default, field.description or ""))
    return rows
