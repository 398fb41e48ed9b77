"""End to end with the real generator binary, the real trainer and a real store (a local folder
and a real S3 server), including processes killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.storage import RunLayout, Store, committed_shard_indices, read_committed_shard
from tests.conftest import ROOT, jobs_env, make_bucket, run_job

TINY = {"GAMES": 12, "SHARDS": 2, "EPOCHS": 2, "DEPTH": 1, "BATCH_SIZE": 256, "EVAL_GAMES": 20, "DEVICE": "cpu"}


def assert_complete_run(store: Store, run_id: str) -> None:
    layout = RunLayout("ur", run_id)
    keys = [layout.run_json, layout.checkpoint, layout.metrics, layout.weights, f"{layout.train}/loss_curves.png"]
    keys.append(layout.model_file("compat_weights.json"))
    for key in keys:
        assert store.exists(key), f"missing {store.display(key)}"
    assert committed_shard_indices(store, layout) == [0, 1]
    for index in (0, 1):
        manifest, _ = read_committed_shard(store, layout, index)  # verifies the digest
        assert manifest.games == 6 and manifest.rows > 0
    weights = store.read_json(layout.weights)
    assert weights["provenance"]["run_id"] == run_id
    assert len(store.read_json(layout.model_file("compat_weights.json"))["value_weights"]) == 81_921


def test_pipeline_on_a_local_folder(generator: Path, tmp_path: Path) -> None:
    result = run_job("pipeline", STORAGE_URL=tmp_path / "store", RUN_ID="local-e2e", **TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "== summary" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["games"] == 12 and summary["epochs"] == 2
    assert_complete_run(Store(str(tmp_path / "store")), "local-e2e")


def test_pipeline_on_a_real_s3_server(generator: Path, s3_env: dict[str, str]) -> None:
    make_bucket("pipeline")
    result = run_job("pipeline", STORAGE_URL="s3://pipeline/team/ludus", RUN_ID="s3-e2e", **TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    store = Store("s3://pipeline/team/ludus")
    assert_complete_run(store, "s3-e2e")
    assert store.exists("ur/runs/s3-e2e/summary.json")


def start_job(job: str, **settings: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", job], env=jobs_env(**settings), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(condition, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_generator_commits_nothing_and_a_rerun_completes(generator: Path, tmp_path: Path) -> None:
    store_url = tmp_path / "store"
    store, layout = Store(str(store_url)), RunLayout("ur", "killed-gen")
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "killed-gen"}
    # Shard 0 commits normally.
    assert run_job("generate", SHARD_INDEX=0, **settings).returncode == 0
    first = store.read_bytes(layout.shard_manifest(0))
    # Shard 1 is slow (deep search) and is killed while the generator runs.
    proc = start_job("generate", SHARD_INDEX=1, **{**settings, "DEPTH": 5, "GAMES": 400})
    wait_for(lambda: subprocess.run(["pgrep", "-f", "rust_gen ur generate"], capture_output=True).returncode == 0)
    time.sleep(1.0)
    subprocess.run(["pkill", "-KILL", "-f", "rust_gen ur generate"], check=False)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert committed_shard_indices(store, layout) == [0], "no manifest may appear for the killed shard"
    assert not store.exists(layout.shard_data(1))
    # The rerun completes the run and leaves the committed shard alone.
    result = run_job("pipeline", **settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 of 2 shards" in result.stdout
    assert store.read_bytes(layout.shard_manifest(0)) == first, "committed shards are not regenerated"
    assert_complete_run(store, "killed-gen")


def test_a_killed_trainer_resumes_from_its_checkpoint(generator: Path, tmp_path: Path) -> None:
    store_url = tmp_path / "store"
    store, layout = Store(str(store_url)), RunLayout("ur", "killed-train")
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "killed-train", "GAMES": 40, "EPOCHS": 200, "PATIENCE": 200}
    for index in (0, 1):
        assert run_job("generate", SHARD_INDEX=index, **settings).returncode == 0
    proc = start_job("train", **settings)
    wait_for(lambda: store.exists(layout.metrics) and len(store.read_bytes(layout.metrics).splitlines()) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    import io

    import torch

    done = torch.load(io.BytesIO(store.read_bytes(layout.checkpoint)), weights_only=True)["state"]["epochs_done"]
    assert 1 <= done < 200
    result = run_job("train", **{**settings, "EPOCHS": done + 1, "LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming after epoch {done}" in result.stderr
    epochs = [json.loads(line)["epoch"] for line in store.read_bytes(layout.metrics).splitlines()]
    assert epochs == list(range(1, done + 2))


def test_temporary_files_of_killed_writers_are_removed_by_the_rerun(generator: Path, tmp_path: Path) -> None:
    store_url = tmp_path / "store"
    store, layout = Store(str(store_url)), RunLayout("ur", "leftovers")
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "leftovers"}
    other = f"{layout.run}/data/shard-00000.safetensors.tmp-0ther"  # another shard's writer may be busy
    for key in (f"{layout.run}/data/shard-00001.safetensors.tmp-dead", other, f"{layout.train}/checkpoint.pt.tmp-dead"):
        store.write_bytes(key, b"half a file")
    assert run_job("generate", SHARD_INDEX=1, **settings).returncode == 0
    assert not store.exists(f"{layout.run}/data/shard-00001.safetensors.tmp-dead")
    assert store.exists(other), "a generator removes only its own shard's leftovers"
    assert run_job("generate", SHARD_INDEX=0, **settings).returncode == 0
    assert run_job("train", **settings).returncode == 0
    leftovers = [p for p in store_url.rglob("*") if ".tmp-" in p.name]
    assert not leftovers, leftovers


def test_a_shard_whose_data_no_longer_matches_its_manifest_is_generated_again(generator: Path, tmp_path: Path) -> None:
    store_url = tmp_path / "store"
    store, layout = Store(str(store_url)), RunLayout("ur", "damaged")
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "damaged", "SHARD_INDEX": 1}
    assert run_job("generate", **settings).returncode == 0
    good = store.read_bytes(layout.shard_data(1))
    store.write_bytes(layout.shard_data(1), good[:-10])  # damaged after its commit
    result = run_job("generate", **settings)
    assert result.returncode == 0 and "is corrupt" in result.stderr and "generating the shard again" in result.stderr, result.stderr
    _, data = read_committed_shard(store, layout, 1)  # verifies the digest
    assert data == good, "the same seed gives the same shard again"


def rank_process(run_id: str, rank: int) -> int | None:
    """The pid of the torchrun worker of rank `rank` training run `run_id`, if it is running."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"RUN_ID={run_id}".encode() in env and f"RANK={rank}".encode() in env and b"TORCHELASTIC_RUN_ID" in b"\0".join(env) and b"jobs" in cmdline:
            return int(proc.name)
    return None


def test_a_killed_rank_fails_the_job_naming_it_and_a_rerun_at_another_size_finishes_without_a_gap(generator: Path, tmp_path: Path) -> None:
    """Two ranks train; rank 1 is killed mid-run (SIGKILL). The job fails with one line naming the
    rank; a rerun in one process resumes from rank 0's last checkpoint, and the metrics have every
    epoch once."""
    store_url = tmp_path / "store"
    store, layout = Store(str(store_url)), RunLayout("ur", "killed-rank")
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "killed-rank", "GAMES": 40, "EPOCHS": 200, "PATIENCE": 200}
    for index in (0, 1):
        assert run_job("generate", SHARD_INDEX=index, **settings).returncode == 0
    proc = start_job("train", TRAIN_PROCESSES=2, **settings)
    wait_for(lambda: store.exists(layout.metrics) and len(store.read_bytes(layout.metrics).splitlines()) >= 2)
    pid = rank_process("killed-rank", 1)
    assert pid is not None, "rank 1 runs"
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: training failed on rank 1 of 2 (killed by SIGKILL)") and "rerun with RUN_ID=killed-rank" in last, last
    import io

    import torch

    done = torch.load(io.BytesIO(store.read_bytes(layout.checkpoint)), weights_only=True)["state"]["epochs_done"]
    assert 1 <= done < 200
    result = run_job("train", **{**settings, "EPOCHS": done + 2, "TRAIN_PROCESSES": 1, "LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming after epoch {done}" in result.stderr
    epochs = [json.loads(line)["epoch"] for line in store.read_bytes(layout.metrics).splitlines()]
    assert epochs == list(range(1, done + 3)), "every epoch once: no gap, no repeat"


def test_a_failed_stage_is_recorded_for_the_report_and_cleared_by_the_rerun(generator: Path, tmp_path: Path) -> None:
    """A stage that fails leaves failure.json naming it; `python -m jobs.report` (CI's step
    summary) prints the stage and its error; the rerun that succeeds removes the record."""
    store_url = tmp_path / "store"
    store, layout = Store(str(store_url)), RunLayout("ur", "fails")
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "fails"}
    # The real generator, except that its matches (the evaluate stage's) fail.
    planted = tmp_path / "rust_gen"
    planted.write_text(f'#!/bin/sh\n[ "$2" = match ] && {{ echo "error: planted failure" >&2; exit 3; }}\nexec {generator} "$@"\n')
    planted.chmod(0o755)
    failed = run_job("pipeline", **{**settings, "GENERATOR_BIN": planted})
    assert failed.returncode != 0
    failure = store.read_json(layout.failure)
    assert failure["stage"] == "evaluate" and failure["runner"] == "local" and "evaluate" in failure["error"], failure
    env = jobs_env(STORAGE_URL=store_url, RUN_ID="fails", TASK="ur")
    cmd = [sys.executable, "-m", "jobs.report", str(tmp_path / "report")]
    report = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("## Run fails failed in its evaluate stage") and failure["error"] in report.stdout, report.stdout
    assert (tmp_path / "report" / "failure.json").is_file()
    assert run_job("pipeline", **settings).returncode == 0
    assert not store.exists(layout.failure)
