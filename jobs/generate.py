"""The generate job: one shard per call, committed data first and manifest last."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.errors import ConfigError, JobError
from common.processes import run_child, temp_prefix
from common.storage import RunLayout, ShardManifest, StorageError, Store, commit_shard, read_committed_shard, read_manifest, sha256_file
from jobs.runs import check_run_identity
from jobs.settings import GenerateSettings
from jobs.tasks import TaskSpec, get_task

log = logging.getLogger(__name__)

REPO_BUILD = Path(__file__).resolve().parent.parent / "rust_gen" / "target" / "release" / "rust_gen"


def find_generator(configured: str) -> str:
    """GENERATOR_BIN, else the repository's release build, else `rust_gen` on PATH."""
    if configured:
        if not Path(configured).is_file():
            raise ConfigError(f"GENERATOR_BIN={configured!r}: no such file")
        if not os.access(configured, os.X_OK):
            raise ConfigError(f"GENERATOR_BIN={configured!r}: the file is not executable")
        return configured
    if REPO_BUILD.is_file():
        return str(REPO_BUILD)
    found = shutil.which("rust_gen")
    if found:
        return found
    raise ConfigError("GENERATOR_BIN is not set and no rust_gen binary was found: run `make build` or set GENERATOR_BIN")


def generator_command(
    binary: str, task: TaskSpec, s: GenerateSettings, out: Path, student: Path | None = None, inputs: list[str] | None = None
) -> list[str]:
    """The task's `rust_gen <task> generate ...` plus the shard flags every task takes. A list,
    never a shell string: no value is ever interpreted by a shell."""
    task_args = task.generator_args(s, s.games_in_shard(s.shard_index))
    if student is not None and task.student_args is not None:
        task_args += task.student_args(s, student)
    task_args += inputs or []
    shard_args = ["--seed", str(s.seed), "--shard-index", str(s.shard_index), "--threads", str(s.threads), "--out", str(out)]
    return [binary, *task_args, *shard_args]


def fetch_student(s: GenerateSettings, store: Store, layout: RunLayout, folder: Path) -> Path | None:
    """For a shard of a round after the first: a local copy of the run's latest model, which
    drives part of its episodes. None for the first round."""
    round_ = s.round_of(s.shard_index)
    if round_ == 0:
        return None
    if not store.exists(layout.weights):
        raise JobError(
            f"shard {s.shard_index} belongs to round {round_}, whose episodes the model of round {round_ - 1} drives, "
            f"but {store.display(layout.weights)} does not exist: train round {round_ - 1} first (ROUND={round_ - 1})"
        )
    path = folder / "student.json"
    path.write_bytes(store.read_bytes(layout.weights))
    return path


def generator_result(stdout: str, shard_index: int) -> dict[str, Any]:
    """The generator's result: a JSON object on its last line of output."""
    lines = stdout.strip().splitlines()
    if not lines:
        raise JobError(f"shard {shard_index}: the generator exited 0 but printed no result (expected a JSON line)")
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or not {"path", "rows", "episodes", "metadata", "seconds"} <= result.keys():
        raise JobError(f"shard {shard_index}: the generator's last line is not its result (a JSON object): {lines[-1][:200]!r}")
    return result


def run_generate(s: GenerateSettings) -> ShardManifest:
    """Writes shard SHARD_INDEX of the run, or does nothing if it is already committed."""
    task = get_task(s.task)
    store = Store(s.storage_url)
    store.check()
    layout = RunLayout(s.task, s.run_id)
    check_run_identity(store, layout, s, "generate")
    existing = read_manifest(store, layout, s.shard_index)
    if existing is not None:
        try:
            read_committed_shard(store, layout, s.shard_index)  # the data must still match its digest
            log.info("shard %d is already committed (%d rows): nothing to do", s.shard_index, existing.rows)
            return existing
        except StorageError as e:
            log.warning("%s: generating the shard again", e)
    binary = find_generator(s.generator_bin)
    with tempfile.TemporaryDirectory(prefix=temp_prefix("shard")) as tmp:
        student = fetch_student(s, store, layout, Path(tmp))
        inputs = task.generator_inputs(s, store, Path(tmp)) if task.generator_inputs else []
        out = Path(tmp) / "out"
        proc = run_child(generator_command(binary, task, s, out, student, inputs), stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise JobError(f"shard {s.shard_index}: rust_gen exited with code {proc.returncode}")
        result = generator_result(proc.stdout, s.shard_index)
        local = Path(result["path"])
        manifest = ShardManifest(
            shard_index=s.shard_index,
            file=local.name,
            rows=result["rows"],
            games=result["episodes"],
            bytes=local.stat().st_size,
            sha256=sha256_file(local),
            seed=s.seed,
            generator=result["metadata"]["generator"],
            settings={
                **task.shard_settings(s),
                "round": s.round_of(s.shard_index),
                **({"student_sha256": sha256_file(student)} if student else {}),
            },
            elapsed_seconds=result["seconds"],
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        commit_shard(store, layout, local, manifest)
    # A killed earlier attempt of this shard may have left its temporary files.
    store.remove_leftovers(layout.data, f"shard-{s.shard_index:05d}.")
    log.info("shard %d: %d samples from %d %s in %.1f s", s.shard_index, manifest.rows, manifest.games, task.episodes, manifest.elapsed_seconds)
    return manifest
