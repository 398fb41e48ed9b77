"""The train job: waits for every shard's manifest, then runs the generic trainer with the
task's learner: checkpoint, metrics and exports go to the store."""

from __future__ import annotations

import logging
import time

from common.errors import JobError
from common.storage import RunLayout, Store, committed_shard_indices
from jobs.runs import check_run_identity
from jobs.settings import TrainSettings
from jobs.tasks import get_task
from trainer import Trainer, TrainResult

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


def wait_for_shards(store: Store, layout: RunLayout, shards: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing = sorted(set(range(shards)) - set(committed_shard_indices(store, layout)))
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise JobError(
                f"waited {timeout:.0f} s (SHARD_WAIT_SECONDS) for {len(missing)} of {shards} shards: "
                f"{', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''} never committed"
            )
        log.info("waiting for %d of %d shards to be committed", len(missing), shards)
        time.sleep(POLL_SECONDS)


def run_train(s: TrainSettings) -> TrainResult:
    store = Store(s.storage_url)
    store.check()
    layout = RunLayout(s.task, s.run_id)
    check_run_identity(store, layout, s, "train")
    shards = s.data_shards()
    wait_for_shards(store, layout, shards, s.shard_wait_seconds)
    # The settings are also the learner's options: the task's train settings extend them.
    config = s.model_copy(update={"shards": shards})
    result = Trainer(config, get_task(s.task).load_learner(s), store=store).train()
    for prefix in (layout.train, layout.model):  # what a killed earlier attempt left behind
        store.remove_leftovers(prefix)
    log.info(
        "trained %d epochs (best %d, val loss %.4f) in %.0f s, %.0f sample-steps/s; weights in %s",
        result.epochs_run,
        result.best_epoch,
        result.best_val_loss,
        result.seconds,
        result.sample_steps_per_second,
        store.display(layout.model),
    )
    return result
