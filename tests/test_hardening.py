"""The second round of fault and bad-input trials (issue: hardening, second round): each test
reproduces one defect that the trials found and fails without its fix. The damaged-shard rerun
and the stage identity check run for every task in tests/test_contract.py; the promotion races
in tests/ur/test_evaluate.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from common.storage import RunLayout, StorageError, Store
from jobs.runs import LEASE_SECONDS, Lease
from tests.conftest import free_port, run_job

TINY = {"GAMES": 8, "SHARDS": 2, "EPOCHS": 1, "DEPTH": 1, "BATCH_SIZE": 256, "EVAL_GAMES": 10, "EVAL_OPPONENTS": "random", "DEVICE": "cpu"}


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"GAMES": 1, "SHARDS": 2}, "GAMES=1 is less than SHARDS=2"),
        ({"TASK": "predator", "ROUND": 3, "ROUNDS": 2}, "ROUND=3 is not below ROUNDS=2"),
        ({"SHARD_INDEX": 4, "SHARDS": 2}, "SHARD_INDEX=4 is not below SHARDS x ROUNDS = 2"),
        ({"TASK": "predator", "N_HEADS": 5, "D_MODEL": 48}, "N_HEADS=5 does not divide D_MODEL=48"),
    ],
)
def test_a_check_across_settings_is_one_line_naming_them_and_shows_no_password(tmp_path: Path, settings: dict[str, object], says: str) -> None:
    """Defect 4: the message printed the raw settings (STORAGE_URL's password included)."""
    job = "train" if "ROUND" in settings else "generate" if "SHARD_INDEX" in settings else "pipeline"
    result = run_job(job, STORAGE_URL="ftp://user:PW-secret@127.0.0.1/x", **settings)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {lines[0].removeprefix('error: ')}"] and says in lines[0], result.stderr
    assert "PW-secret" not in result.stderr and "{" not in lines[0], result.stderr


def test_s3_errors_when_checking_or_listing_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 5: exists() and list() let botocore's tracebacks through (a store outage while train
    waits for shards)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: an outage
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = Store("s3://bucket/prefix")
    with pytest.raises(StorageError, match=r"^checking s3://bucket/prefix/ur/runs/r/run\.json failed: \w+"):
        store.exists("ur/runs/r/run.json")
    with pytest.raises(StorageError, match=r"^listing s3://bucket/prefix/ur/runs/r/data failed: \w+"):
        store.list("ur/runs/r/data")


@pytest.mark.parametrize("url", ["s3://bucket/../../x", "s3://bucket/a/../b"])
def test_parent_folders_in_an_object_store_url_are_refused_naming_them(url: str) -> None:
    """Defect 5: `..` in an object-store URL is refused before any work (a folder path may use
    it: it is resolved)."""
    result = run_job("generate", STORAGE_URL=url, GAMES=2, SHARDS=1, timeout=60)
    assert result.returncode == 2 and f"STORAGE_URL={url!r}: '..' in s3:// URLs is refused" in result.stderr, result.stderr


def test_a_run_id_with_a_final_newline_is_refused(tmp_path: Path) -> None:
    """Defect 8: `$` matched before a final newline, so RUN_ID='t\\n' made a folder 't\\n'."""
    result = run_job("generate", STORAGE_URL=tmp_path, RUN_ID="t\n", GAMES=2, SHARDS=1, timeout=60)
    assert result.returncode == 2 and "RUN_ID='t\\n'" in result.stderr, result.stderr
    assert not (tmp_path / "ur" / "runs").exists()


def future_lease(store: Store, layout: RunLayout, written_seconds_ago: float) -> Path:
    record = {"owner": "fast-clock-host:1", "token": "x", "renewed_at": time.time() + 3600, "seconds": LEASE_SECONDS}
    store.write_bytes(layout.lease, json.dumps(record).encode())
    path = Path(store.path(layout.lease))
    stamp = time.time() - written_seconds_ago
    os.utime(path, (stamp, stamp))
    return path


def test_a_lease_stamped_in_the_future_is_a_clock_fault_and_frees_after_the_usual_time(tmp_path: Path) -> None:
    """Defect 9: a lease from a host whose clock runs an hour fast locked the run for an hour."""
    store, layout = Store(str(tmp_path)), RunLayout("ur", "clock")
    future_lease(store, layout, written_seconds_ago=1)
    with pytest.raises(Exception, match=r"3\d\d\d s ahead of this host's \(a clock fault; it is free 60 s after its last write\)"):
        Lease(store, layout, owner="me:1").acquire(settle_seconds=0)
    future_lease(store, layout, written_seconds_ago=LEASE_SECONDS + 1)
    lease = Lease(store, layout, owner="me:1")
    lease.acquire(settle_seconds=0)  # written more than 60 s ago by the store's clock: free
    lease.release()


def test_a_generator_that_prints_nothing_is_one_line(tmp_path: Path) -> None:
    """Defect 10: GENERATOR_BIN=/bin/true (exit 0, no output) gave an IndexError traceback."""
    result = run_job("generate", STORAGE_URL=tmp_path, GENERATOR_BIN="/bin/true", GAMES=2, SHARDS=1, timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["error: shard 0: the generator exited 0 but printed no result (expected a JSON line)"]


@pytest.mark.parametrize("content", ["[]", '"run"', '{"settings": []}'])
def test_a_run_json_that_is_not_a_run_record_is_one_line_naming_it(tmp_path: Path, content: str) -> None:
    """Defect 11: a run.json of valid JSON but not an object gave an AttributeError traceback."""
    layout = RunLayout("ur", "odd")
    Store(str(tmp_path)).write_bytes(layout.run_json, content.encode())
    for job in ("pipeline", "generate"):
        result = run_job(job, STORAGE_URL=tmp_path, RUN_ID="odd", **TINY, timeout=120)
        assert result.returncode == 1, result.stderr
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .endswith("ur/runs/odd/run.json is not a run record (a JSON object with its settings): delete it or use another RUN_ID")
        )
        assert "Traceback" not in result.stderr


def test_credentials_in_an_s3_url_are_refused_before_any_work(tmp_path: Path) -> None:
    """Defect 12: s3fs read key:secret@bucket as a bucket name and logged it at DEBUG."""
    result = run_job("generate", STORAGE_URL="s3://key:hunter2@bucket/x", LOG_LEVEL="DEBUG", GAMES=2, SHARDS=1, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "s3:// URLs take no credentials" in result.stderr and "AWS_ACCESS_KEY_ID" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("teacher", "says"), [("planner:replan=0", "planner option replan=0: expected an integer >= 1"), ("planner:radius=0", "radius=0")]
)
def test_a_teacher_option_out_of_range_stops_before_any_work(generator: Path, tmp_path: Path, teacher: str, says: str) -> None:
    """Defect 6: TEACHER=planner:replan=0 wrote run.json, failed late in rust_gen with its real
    message pushed out by clap's footer, and locked the RUN_ID against the corrected rerun."""
    settings = {"TASK": "predator", "GAMES": 2, "SHARDS": 1, "STEPS": 40, "MAX_BOIDS": 4, "EPOCHS": 1, "EVAL_GAMES": 2, "EVAL_STEPS": 40}
    bad = run_job("pipeline", STORAGE_URL=tmp_path, RUN_ID="teach", TEACHER=teacher, **settings)
    assert bad.returncode == 2 and f"TEACHER={teacher!r}" in bad.stderr and says in bad.stderr, bad.stderr
    assert not (tmp_path / "predator").exists(), "nothing written"
    fixed = run_job("pipeline", STORAGE_URL=tmp_path, RUN_ID="teach", TEACHER="planner:replan=2", **settings)
    assert fixed.returncode == 0, fixed.stderr[-2000:]


def test_a_run_that_failed_before_holding_anything_takes_corrected_settings(tmp_path: Path) -> None:
    """Defect 6, the lock: a run.json whose run never committed a shard or a model does not
    refuse a corrected rerun; the generator's own error line is what the pipeline shows."""
    broken = tmp_path / "rust_gen"
    script = "#!/bin/sh\necho 'error: the teacher cannot run here' >&2\necho \"For more information, try '--help'.\" >&2\nexit 2\n"
    broken.write_text(script)
    broken.chmod(0o755)
    first = run_job("pipeline", STORAGE_URL=tmp_path / "store", RUN_ID="lock", GENERATOR_BIN=broken, **TINY)
    assert first.returncode == 1 and "error: the teacher cannot run here" in first.stderr, first.stderr
    again = run_job("pipeline", STORAGE_URL=tmp_path / "store", RUN_ID="lock", **{**TINY, "SEED": 4})
    assert again.returncode == 0, again.stderr[-2000:]
