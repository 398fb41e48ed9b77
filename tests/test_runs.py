"""One run stays one run: a rerun with settings that define other data or another model is
refused naming them (and one that only changes how training goes on is not), and a lease keeps a
second pipeline off a run that a live one is working on (issue: hardening, item 2)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from common.storage import RunLayout, Store
from jobs.runs import LEASE_SECONDS, Lease
from tests.conftest import run_job

TINY = {"GAMES": 8, "SHARDS": 2, "EPOCHS": 1, "DEPTH": 1, "BATCH_SIZE": 256, "EVAL_GAMES": 10, "EVAL_OPPONENTS": "random", "DEVICE": "cpu"}


def test_a_rerun_with_other_defining_settings_is_refused_naming_them(generator: Path, tmp_path: Path) -> None:
    settings = {**TINY, "STORAGE_URL": tmp_path, "RUN_ID": "defined"}
    assert run_job("pipeline", **settings).returncode == 0
    store, layout = Store(str(tmp_path)), RunLayout("ur", "defined")
    before = store.read_bytes(layout.weights)
    other = run_job("pipeline", **{**settings, "SEED": 5, "DEPTH": 2})
    assert other.returncode == 2, other.stderr[-2000:]
    assert "RUN_ID='defined' was made with SEED=0, DEPTH=1, not SEED=5, DEPTH=2" in other.stderr
    assert store.read_bytes(layout.weights) == before, "nothing was touched"
    longer = run_job("pipeline", **{**settings, "EPOCHS": 2, "EVAL_GAMES": 12})
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert len(store.read_bytes(layout.metrics).splitlines()) == 2, "EPOCHS may grow on a rerun: training went on"
    assert not store.exists(layout.lease), "the lease is released at the end"


def test_a_live_lease_keeps_a_second_pipeline_off_the_run(generator: Path, tmp_path: Path) -> None:
    store, layout = Store(str(tmp_path)), RunLayout("ur", "leased")
    holder = Lease(store, layout, owner="other-host:123")
    holder.acquire(settle_seconds=0)
    try:
        refused = run_job("pipeline", **TINY, STORAGE_URL=tmp_path, RUN_ID="leased")
        assert refused.returncode != 0
        assert "another pipeline or sweep (other-host:123) is working on this run" in refused.stderr, refused.stderr[-2000:]
        assert not store.exists(layout.run_json), "nothing written"
        # The same owner (a restarted controller pod of the same Job) takes its lease back.
        same = run_job("pipeline", **TINY, STORAGE_URL=tmp_path, RUN_ID="leased", LEASE_OWNER="other-host:123")
        assert same.returncode == 0, same.stderr[-2000:]
    finally:
        holder.release()


def test_an_expired_lease_is_taken_over(generator: Path, tmp_path: Path) -> None:
    store, layout = Store(str(tmp_path)), RunLayout("ur", "stale")
    dead = {"owner": "dead-host:1", "token": "x", "renewed_at": time.time() - LEASE_SECONDS - 1, "seconds": LEASE_SECONDS}
    store.write_bytes(layout.lease, json.dumps(dead).encode())
    result = run_job("pipeline", **TINY, STORAGE_URL=tmp_path, RUN_ID="stale")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not store.exists(layout.lease)
