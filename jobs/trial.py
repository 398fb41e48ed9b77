"""The trial job: one trial of a sweep, which is the train job on the sweep run's shards with the
trial's settings, into a run of its own. The sweep (jobs/sweep.py) writes each trial's record,
its settings among them, to the store before it starts the trial; this job reads it there, so a
pod of an Indexed Job needs only its index (SWEEP_TRIAL + JOB_COMPLETION_INDEX)."""

from __future__ import annotations

import os

from common.errors import ConfigError, JobError
from common.storage import RunLayout, Store
from jobs.runs import TrialRecord, trial_key
from jobs.settings import TrialSettings, load, settings_class
from jobs.train import run_train
from trainer import TrainResult


def this_trial(s: TrialSettings) -> int:
    index = os.environ.get("JOB_COMPLETION_INDEX", "0")
    if s.sweep_trial < 0:
        raise ConfigError("SWEEP_TRIAL is not set: the sweep job starts trials (python -m jobs sweep)")
    if not index.isdigit():
        raise ConfigError(f"JOB_COMPLETION_INDEX={index!r}: expected a non-negative integer")
    return s.sweep_trial + int(index)


def run_trial(s: TrialSettings) -> TrainResult | None:
    """Trains the trial: its settings on top of the sweep's, its own RUN_ID, the sweep run's data."""
    store = Store(s.storage_url)
    layout = RunLayout(s.task, s.run_id)
    key = trial_key(layout, this_trial(s))
    if not store.exists(key):
        raise JobError(f"{store.display(key)} does not exist: the sweep writes a trial's record before it starts the trial")
    record = TrialRecord.model_validate(store.read_json(key))
    # The environment carries the trial's settings to torchrun's ranks, if TRAIN_PROCESSES asks for some.
    for name, value in record.params.items():
        os.environ[name.upper()] = str(value)
    os.environ.update({"RUN_ID": record.run_id, "DATA_RUN_ID": s.run_id, "SWEEP_TRIAL": "-1"})
    os.environ.pop("JOB_COMPLETION_INDEX", None)
    settings = load(settings_class("train", s.task))
    return run_train(settings)  # type: ignore[arg-type]
