"""The train job: waits for every shard's manifest, then runs the generic trainer with the
task's learner: checkpoint, metrics and exports go to the store.

With more than one training process (TRAIN_PROCESSES per node, TRAIN_NODES nodes) the job
starts itself again under torchrun (torch.distributed elastic), once per rank; each rank joins
the process group (gloo on CPU, NCCL on CUDA) and trains its share of every batch, and rank 0
writes. A rank that fails fails the job, with one line naming the rank; a rerun resumes from the
last checkpoint, at any number of ranks."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import subprocess
import sys
import time

from common.errors import JobError
from common.processes import child
from common.storage import RunLayout, Store, committed_shard_indices
from jobs.runs import check_run_identity
from jobs.settings import TrainSettings
from jobs.tasks import get_task
from trainer import Trainer, TrainResult
from trainer.distributed import World, start, stop
from trainer.train import pick_device

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0
M_ARENA_MAX = -8  # glibc's mallopt parameter number


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


def under_torchrun() -> bool:
    """Whether this process is a rank that torchrun started."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def torchrun_world() -> World:
    return World(rank=int(os.environ["RANK"]), size=int(os.environ["WORLD_SIZE"]), local_rank=int(os.environ["LOCAL_RANK"]))


def processes_per_node(s: TrainSettings) -> int:
    """TRAIN_PROCESSES, or the node's GPUs when training on CUDA, else 1."""
    if s.train_processes:
        return s.train_processes
    import torch

    return torch.cuda.device_count() if s.device in ("auto", "cuda") and torch.cuda.is_available() else 1


def torchrun_command(s: TrainSettings, per_node: int) -> list[str]:
    """`python -m torch.distributed.run ... -m jobs train`: a list, never a shell string. One
    node meets itself (--standalone); several meet at TRAIN_RDZV_ENDPOINT (c10d), the run's id
    naming the rendezvous. No restarts: a rerun resumes from the checkpoint instead."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(per_node), "--max-restarts", "0"]
    if s.train_nodes == 1:
        command.append("--standalone")
    else:
        command += ["--nnodes", str(s.train_nodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", s.train_rdzv_endpoint, "--rdzv-id", s.run_id]
        if s.train_node_index >= 0:
            # Node 0 hosts the rendezvous store: said outright, since torchrun's guess (does the
            # endpoint resolve to this machine?) fails while the first node's DNS name is new.
            command += ["--rdzv-conf", f"is_host={int(s.train_node_index == 0)}"]
    return [*command, "-m", "jobs", "train"]


def failed_ranks(stderr_lines: list[str]) -> list[tuple[int, int]]:
    """(rank, exit code) of each failed rank in torchrun's failure summary, the likely cause first:
    a rank killed by a signal, else the first failure torchrun observed (its "Root Cause")."""
    text = "\n".join(stderr_lines)
    found = re.findall(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)", text)
    root = text.rfind("Root Cause")
    if root >= 0:  # the summary lists other failures first, then the root cause
        first = re.search(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)", text[root:])
        if first:
            found.remove(first.groups())
            found.insert(0, first.groups())
    # A rank killed by a signal is a cause; the ranks that then lose their peer exit with an
    # error of their own, sometimes observed first. So signals come first.
    failed = [(int(rank), int(code)) for rank, code in found]
    return sorted(failed, key=lambda failure: failure[1] >= 0)


def exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def launch_ranks(s: TrainSettings, per_node: int) -> None:
    """Runs the ranks of this node under torchrun and waits for them; their output passes
    through. Fails with one line naming the rank that failed."""
    env = dict(os.environ)
    cores = os.cpu_count() or 1
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores // per_node)))  # the node's cores shared out
    command = torchrun_command(s, per_node)
    log.info("training on %d process(es) x %d node(s): %s", per_node, s.train_nodes, " ".join(command[1:]))
    lines: list[str] = []
    with child(command, env=env, stderr=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            lines.append(line.rstrip("\n"))
            del lines[:-400]  # the summary is at the end
        proc.wait()
    if proc.returncode != 0:
        failed = failed_ranks(lines)
        if not failed:
            raise JobError(f"torchrun exited with code {proc.returncode}; rerun with RUN_ID={s.run_id} to resume from the last checkpoint")
        (rank, code), others = failed[0], failed[1:]
        said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        cause = f": {said[-1]}" if said and not others else ""  # with one failed rank, its own message
        then = f"; then {', '.join(f'rank {r} ({exit_reason(c)})' for r, c in others)}" if others else ""
        raise JobError(
            f"training failed on rank {rank} of {per_node * s.train_nodes} ({exit_reason(code)}){cause}{then}; "
            f"rerun with RUN_ID={s.run_id} to resume from the last checkpoint"
        )


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Caps glibc's malloc arenas (as MALLOC_ARENA_MAX does). The shard readers allocate in
    threads of their own and the training loop frees: with an arena per thread, freed memory
    scatters and the peak creeps up with the shards read (+14% from 0.5M to 10M predator samples
    streamed; +7% capped: bench/results/memory.md). Elsewhere than glibc, nothing to do."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)


def run_train(s: TrainSettings) -> TrainResult | None:
    """Trains in this process, or, with more than one process, starts the ranks under torchrun
    (and returns None: the ranks report)."""
    limit_malloc_arenas()
    per_node = processes_per_node(s)
    if per_node * s.train_nodes > 1 and not under_torchrun():
        launch_ranks(s, per_node)
        return None
    world = torchrun_world() if under_torchrun() else World()
    store = Store(s.storage_url)
    store.check()
    layout = RunLayout(s.task, s.run_id, s.data_run_id)
    check_run_identity(store, layout, s, "train")
    shards = s.data_shards()
    wait_for_shards(store, layout, shards, s.shard_wait_seconds)
    # The settings are also the learner's options: the task's train settings extend them.
    config = s.model_copy(update={"shards": shards})
    start(world, world.device(pick_device(s.device)))  # before the model: DDP needs the group
    result = Trainer(config, get_task(s.task).load_learner(s), store=store, world=world).train()
    stop(world)
    if not world.writer:
        return result
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
