"""The sweep job at tiny size: real shards from the real generator, real trial processes (the
train job), Optuna's own sampler and pruner, the study kept in the store."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.storage import RunLayout, Store, read_metrics
from jobs.runs import Lease, TrialRecord, trial_key
from tests.conftest import ROOT, jobs_env, run_job

SPACE = "learning_rate=0.001..0.01:log,epochs=2..4,batch_size=64|128"
SWEEP: dict[str, object] = {
    "TASK": "ur",
    "GAMES": 40,
    "DEPTH": 1,
    "SHARDS": 2,
    "EVAL_GAMES": 20,
    "EVAL_OPPONENTS": "random,emm:1",
    "DEVICE": "cpu",
    "SEED": 3,
    "SWEEP_SPACE": SPACE,
    "LOG_LEVEL": "WARNING",
}


def records(store: Store, run_id: str) -> list[TrialRecord]:
    layout = RunLayout("ur", run_id)
    keys = sorted(k for k in store.list(f"{layout.run}/sweep/trials") if k.endswith(".json"))
    return [TrialRecord.model_validate(store.read_json(k)) for k in keys]


def test_a_sweep_runs_its_trials_on_the_runs_shards_and_reports_the_best(generator: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    result = run_job("sweep", STORAGE_URL=store.root, RUN_ID="sweep", TRIALS=3, PARALLEL=2, **SWEEP)
    assert result.returncode == 0, result.stderr[-3000:]
    layout = RunLayout("ur", "sweep")
    trials = records(store, "sweep")
    assert [t.number for t in trials] == [0, 1, 2]
    assert {t.state for t in trials} <= {"complete", "pruned"}, trials
    for t in trials:
        assert 0.001 <= float(t.params["learning_rate"]) <= 0.01 and t.params["batch_size"] in (64, 128) and 2 <= int(t.params["epochs"]) <= 4
        losses = [m["val_loss"] for m in read_metrics(store, RunLayout("ur", t.run_id))]
        assert t.value == min(losses) and len(losses) == t.epochs
        weights = store.read_json(RunLayout("ur", t.run_id).weights)
        assert [s["shard_index"] for s in weights["provenance"]["shards"]] == [0, 1], "every trial trains on the sweep run's shards"
    assert not any(store.exists(RunLayout("ur", t.run_id).shard_manifest(0)) for t in trials), "no trial generates data of its own"
    rows = list(csv.DictReader(io.StringIO(store.read_bytes(f"{layout.run}/sweep/trials.csv").decode())))
    best = min((t for t in trials if t.state == "complete"), key=lambda t: t.value or 0.0)
    assert rows[0]["trial"] == str(best.number) and len(rows) == 3
    report = store.read_bytes(f"{layout.run}/sweep/report.md").decode()
    assert f"Best: trial {best.number} ({best.run_id})" in report
    for chart in ("history", "parallel"):
        assert store.read_bytes(f"{layout.run}/sweep/{chart}.png").startswith(b"\x89PNG")
    assert store.exists(f"{RunLayout('ur', best.run_id).eval}/report.json"), "the best trial is evaluated"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["best_run_id"] == best.run_id
    assert summary["make"].startswith("make job TASK=ur GAMES=40 ") and f"EPOCHS={best.params['epochs']}" in summary["make"]


@pytest.mark.parametrize(
    ("space", "said"),
    [
        ("seed=1..5", "SEED is not a searchable setting"),
        ("depth=1..3", "DEPTH is not a searchable setting"),
        ("learning_rate=0.001..2", "LEARNING_RATE=2.0 is not allowed"),
        ("learning_rate=fast", "LEARNING_RATE='fast' is not allowed"),
        ("learning_rate", "'learning_rate' is neither"),
    ],
)
def test_a_bad_space_stops_the_sweep_before_any_work(tmp_path: Path, space: str, said: str) -> None:
    result = run_job("sweep", STORAGE_URL=tmp_path / "store", RUN_ID="bad", TRIALS=2, **{**SWEEP, "SWEEP_SPACE": space})
    assert result.returncode == 2, result.stderr
    assert said in result.stderr, result.stderr
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.json")), "nothing written"


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.5)


def test_a_killed_sweep_reruns_its_cut_off_trial_and_never_a_finished_one(generator: Path, tmp_path: Path) -> None:
    """SIGKILL to the sweep and its trial while trial 1 trains (trial 0 finished); the rerun
    with the same RUN_ID (and the same LEASE_OWNER, as a restarted pod has) rebuilds the study,
    resumes trial 1 from its checkpoint, leaves trial 0 alone and runs trial 2."""
    store = Store(str(tmp_path / "store"))
    settings = {**SWEEP, "STORAGE_URL": store.root, "RUN_ID": "killed", "TRIALS": 3, "PARALLEL": 1, "LEASE_OWNER": "sweep-test"}
    settings["SWEEP_SPACE"] = "learning_rate=0.001..0.01:log,epochs=4..6,batch_size=64|128"
    settings["SWEEP_PRUNER"] = "none"
    env = jobs_env(**settings)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    sweep = subprocess.Popen([sys.executable, "-m", "jobs", "sweep"], env=env, cwd=ROOT, start_new_session=True, **quiet)
    layout = RunLayout("ur", "killed")

    def trial_1_has_an_epoch() -> bool:
        return store.exists(trial_key(layout, 1)) and len(read_metrics(store, RunLayout("ur", "killed-t0001"))) >= 1

    try:
        wait_for(trial_1_has_an_epoch, 300, "trial 1's first epoch")
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()
    before = records(store, "killed")
    assert [t.state for t in before] == ["complete", "running"], before
    finished = store.read_bytes(RunLayout("ur", "killed-t0000").checkpoint)
    cut_off_epochs = len(read_metrics(store, RunLayout("ur", "killed-t0001")))

    result = run_job("sweep", **settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 trial(s) finished earlier, 1 cut off (run again)" in result.stdout, result.stdout
    after = records(store, "killed")
    assert [t.number for t in after] == [0, 1, 2] and all(t.state == "complete" for t in after), after
    assert after[0] == before[0], "the finished trial's record is as it was"
    assert store.read_bytes(RunLayout("ur", "killed-t0000").checkpoint) == finished, "the finished trial did not train again"
    assert after[1].params == before[1].params, "the cut-off trial ran again with its own settings"
    epochs = [m["epoch"] for m in read_metrics(store, RunLayout("ur", "killed-t0001"))]
    assert epochs == list(range(1, int(after[1].params["epochs"]) + 1)) and cut_off_epochs >= 1, "it resumed, epochs once each"


def test_a_trial_pod_trains_the_trial_its_index_names(generator: Path, tmp_path: Path) -> None:
    """As a pod of the trials' Indexed Job does: SWEEP_TRIAL=3 and JOB_COMPLETION_INDEX=1 train
    trial 4 from its record, into its own run, on the sweep run's shards."""
    store = Store(str(tmp_path / "store"))
    values = {k: v for k, v in SWEEP.items() if not k.startswith(("SWEEP_", "EVAL_"))}
    for index in (0, 1):
        assert run_job("generate", STORAGE_URL=store.root, RUN_ID="pods", SHARD_INDEX=index, **values).returncode == 0
    layout = RunLayout("ur", "pods")
    record = TrialRecord(number=4, run_id="pods-t0004", params={"epochs": 2, "learning_rate": 0.004})
    store.write_json(trial_key(layout, 4), record.model_dump(mode="json"))
    result = run_job("trial", STORAGE_URL=store.root, RUN_ID="pods", SWEEP_TRIAL=3, JOB_COMPLETION_INDEX=1, **values)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(store, RunLayout("ur", "pods-t0004"))
    assert len(metrics) == 2 and metrics[-1]["lr"] > 0
    assert store.read_json(RunLayout("ur", "pods-t0004").weights)["provenance"]["training_config"]["learning_rate"] == 0.004


def test_a_second_sweep_on_a_run_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    """The sweep takes the run's lease, the pipeline's: another holder (a sweep or a pipeline that
    renews it) stops it before it writes anything."""
    store = Store(str(tmp_path / "store"))
    layout = RunLayout("ur", "busy")
    with Lease(store, layout, owner="the-first-sweep"):
        result = run_job("sweep", STORAGE_URL=store.root, RUN_ID="busy", TRIALS=2, **SWEEP)
    assert result.returncode == 1, result.stderr
    assert "another pipeline or sweep (the-first-sweep) is working on this run" in result.stderr, result.stderr
    assert not store.exists(layout.run_json) and not store.list(f"{layout.run}/sweep")
