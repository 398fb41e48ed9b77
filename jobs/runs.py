"""What keeps one run one run: `run.json` records the settings that define its data and model,
and a rerun with other values is refused; a lease in the store keeps two pipelines off one run
at a time (README, 'Bad input and reliability')."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from common.errors import ConfigError, JobError
from common.provenance import git_revision
from common.storage import RunLayout, Store, committed_shard_indices
from jobs.settings import CommonSettings, PipelineSettings
from jobs.tasks import get_task

log = logging.getLogger(__name__)

# Generic settings that define the data and the model; the task's own generate and train
# settings (teacher, depth, model size, ...) define them too.
DEFINING = ("task", "seed", "shards", "games", "validation_split")
LEASE_SECONDS = 60.0  # a lease not renewed for this long is free
RENEW_SECONDS = 15.0


def defining_settings(s: CommonSettings) -> list[str]:
    """The settings that define the run's data and model, of those that `s` (a stage's or the
    pipeline's settings) has."""
    spec = get_task(s.task)
    own = [name for stage in ("generate", "train") for name in spec.settings[stage].model_fields]
    return [name for name in (*DEFINING, *own) if name in type(s).model_fields]


def changeable_settings(s: CommonSettings) -> list[str]:
    fixed = set(defining_settings(s)) | {"storage_url", "run_id"}
    return [name for name in type(s).model_fields if name not in fixed]


def recorded_settings(store: Store, layout: RunLayout) -> dict[str, Any] | None:
    """The settings run.json records; None for a run that has none yet."""
    if not store.exists(layout.run_json):
        return None
    record = store.read_json(layout.run_json)
    settings = record.get("settings", {}) if isinstance(record, dict) else None
    if not isinstance(settings, dict):
        raise JobError(f"{store.display(layout.run_json)} is not a run record (a JSON object with its settings): delete it or use another RUN_ID")
    return settings


def check_run_identity(store: Store, layout: RunLayout, s: CommonSettings, job: str = "pipeline") -> None:
    """Refuses settings that differ from those run.json records for the run's data and model,
    naming each: a stage run on its own must not write data or provenance of another run."""
    recorded = recorded_settings(store, layout)
    if recorded is None:
        return
    current = s.model_dump(mode="json", exclude={"storage_url"})
    changed = [name for name in defining_settings(s) if name in recorded and recorded[name] != current.get(name)]
    if changed:
        was = ", ".join(f"{n.upper()}={recorded[n]!r}" for n in changed)
        now = ", ".join(f"{n.upper()}={current.get(n)!r}" for n in changed)
        may = ", ".join(n.upper() for n in changeable_settings(s) if n in ("epochs", "patience", "rounds", "eval_games"))
        raise ConfigError(
            f"RUN_ID={s.run_id!r} was made with {was}, not {now} ({store.display(layout.run_json)}): these settings define the run's "
            f"data and model, so the {job} job refuses them; use a new RUN_ID, or the recorded values to resume"
            + (f". A rerun may change {may} and the other training, evaluation and runner settings" if may else "")
        )


def holds_anything(store: Store, layout: RunLayout) -> bool:
    """Whether the run has data or a model that its recorded settings made."""
    return bool(committed_shard_indices(store, layout)) or store.exists(layout.checkpoint) or store.exists(layout.weights)


def check_or_write_run_json(store: Store, layout: RunLayout, s: PipelineSettings) -> None:
    """Writes run.json for a new run; for an existing one, refuses settings that differ from
    those that made its data and model, naming each."""
    current = s.model_dump(mode="json", exclude={"storage_url"})
    if recorded_settings(store, layout) is None or not holds_anything(store, layout):
        # A run with no committed shard and no model yet was made from nothing: a corrected rerun
        # (after a bad setting that only the generator refused, say) starts it afresh.
        store.write_json(
            layout.run_json,
            {
                "run_id": s.run_id,
                "task": s.task,
                "settings": current,
                "git_revision": git_revision(),
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
        return
    check_run_identity(store, layout, s)


def lease_owner() -> str:
    """Who holds a lease: LEASE_OWNER (the Kubernetes controller sets its Job's uid, so a
    restarted pod takes its own lease back at once), else this host and process."""
    return os.environ.get("LEASE_OWNER") or f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """A record in the store that one pipeline renews while it works on a run. Object stores
    offer no portable compare-and-swap, so taking it is write, wait, read back: of two pipelines
    starting together, the one whose record survives goes on and the other stops."""

    def __init__(self, store: Store, layout: RunLayout, owner: str | None = None) -> None:
        self.store, self.key, self.owner = store, layout.lease, owner or lease_owner()
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict[str, Any]:
        return {"owner": self.owner, "token": self.token, "renewed_at": time.time(), "seconds": LEASE_SECONDS}

    def _holder(self) -> dict[str, Any] | None:
        """The other live holder, if there is one."""
        if not self.store.exists(self.key):
            return None
        try:
            held = self.store.read_json(self.key)
        except Exception:  # a damaged lease protects nothing
            return None
        if not isinstance(held, dict) or held.get("owner") == self.owner:
            return None
        age = time.time() - float(held.get("renewed_at", 0))
        if age < 0:
            # The holder's clock is ahead of ours: a clock fault. Its stamp cannot say when it
            # was renewed, so the store's own time of the last write does; the lease is free 60 s
            # after that, as usual, instead of for as long as the clock is ahead.
            written = self.store.modified(self.key)
            log.warning("%s: renewed_at is %.0f s in the future (a clock fault on %s)", self.store.display(self.key), -age, held.get("owner"))
            held = {**held, "clock_fault_seconds": -age}
            age = time.time() - written if written is not None else 0.0
        return held if age < float(held.get("seconds", LEASE_SECONDS)) else None

    def acquire(self, settle_seconds: float = 1.0) -> None:
        held = self._holder()
        if held is not None:
            raise JobError(self._busy(held))
        self.store.write_json(self.key, self._record())
        time.sleep(settle_seconds)
        back = self.store.read_json(self.key)
        if back.get("token") != self.token:
            raise JobError(self._busy(back))
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._thread.start()

    def _busy(self, held: dict[str, Any]) -> str:
        renewed = datetime.fromtimestamp(float(held.get("renewed_at", 0)), timezone.utc).isoformat(timespec="seconds")
        if "clock_fault_seconds" in held:
            ahead = held["clock_fault_seconds"]
            renewed += f" by its clock, {ahead:.0f} s ahead of this host's (a clock fault; it is free {LEASE_SECONDS:.0f} s after its last write)"
        return (
            f"another pipeline or sweep ({held.get('owner')}) is working on this run: {self.store.display(self.key)} was renewed at {renewed}; "
            f"wait for it to finish, or if it died, rerun after {LEASE_SECONDS:.0f} s"
        )

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self.store.write_json(self.key, self._record())
            except Exception as e:  # a missed renewal is retried; the lease lasts 4 of them
                log.warning("could not renew the lease: %s", e)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if self.store.exists(self.key) and self.store.read_json(self.key).get("token") == self.token:
                self.store.delete(self.key)
        except Exception as e:  # it expires by itself
            log.warning("could not release the lease: %s", e)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class TrialRecord(BaseModel):
    """A trial as the sweep keeps it in the store (sweep/trials/trial-NNN.json)."""

    number: int
    run_id: str  # the trial's own run: its checkpoint, metrics and model
    params: dict[str, int | float | str]
    state: str = "running"  # running, complete, pruned, failed
    value: float | None = None
    intermediate: dict[int, float] = {}
    seconds: float = 0.0
    epochs: int = 0
    error: str = ""


def trial_key(layout: RunLayout, number: int) -> str:
    return f"{layout.run}/sweep/trials/trial-{number:04d}.json"


def trial_run_id(run_id: str, number: int) -> str:
    return f"{run_id}-t{number:04d}"
