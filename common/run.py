"""The settings that name a run and where it lives: the same for every task and every stage
(the task itself is named by the jobs' TASK, or by the trainer's learner).

A plain model that reads no environment variable; the jobs' settings extend it (and read the
environment), the trainer's config extends it too.
"""

from __future__ import annotations

import re
from pathlib import Path

import fsspec
from pydantic import BaseModel, ConfigDict, Field, field_validator

RUN_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")  # use fullmatch


class RunConfig(BaseModel):
    # inf and nan are refused in every float setting (they end up as invalid JSON in weights.json).
    model_config = ConfigDict(allow_inf_nan=False)

    storage_url: str = Field("./store", description="Object store root: a folder, s3://bucket/prefix, or any fsspec URL")
    run_id: str = Field("run", description="Run name; reuse one to resume it")
    # The trainer seeds a generator with SEED + 1, which must stay below 2^64.
    seed: int = Field(0, ge=0, le=2**64 - 2, description="Seed of the run: generation, split, initialisation, batches")
    shards: int = Field(2, ge=1, le=99_999, description="Number of generation shards (one per process or Kubernetes index)")

    @field_validator("storage_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        url = url.strip()
        if "://" not in url:
            if not url:
                raise ValueError("empty: expected a folder path or an fsspec URL such as s3://bucket/prefix")
            return str(Path(url).expanduser().resolve())
        scheme, path = url.split("://", 1)
        if scheme == "file":
            if not path:
                raise ValueError("file:// names no folder: expected file:///absolute/path or a folder path")
            return str(Path(path).resolve())
        if scheme not in fsspec.available_protocols():
            raise ValueError(f"unknown scheme {scheme!r}: expected a folder path or an fsspec URL such as s3://bucket/prefix")
        if scheme == "memory":
            raise ValueError("memory:// lives inside one process, and the stages are separate processes: use a folder or an object store")
        if not path.split("/", 1)[0].rpartition("@")[2]:
            raise ValueError(f"{scheme}:// names no bucket: expected {scheme}://bucket/prefix")
        if scheme in ("s3", "s3a", "gs", "gcs", "az", "abfs") and "@" in path.split("/", 1)[0]:
            # s3fs would read "key:secret@bucket" as a bucket name, and log it at DEBUG.
            raise ValueError(
                f"{scheme}:// URLs take no credentials (user:password@): the store's credentials come from the standard "
                "variables (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3) or the platform's workload identity"
            )
        if ".." in path.split("/"):
            # Object stores have no parent folders: ".." would be part of a key, or climb out of the prefix.
            raise ValueError(f"'..' in {scheme}:// URLs is refused: an object store key has no parent folder; name the prefix itself")
        return url

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        if not RUN_ID_PATTERN.fullmatch(run_id):  # match() would let "run\n" through: $ matches before a final newline
            raise ValueError("expected 1-63 characters of a-z, 0-9, '.', '-', starting with a letter or digit")
        return run_id
