"""The whole run: generate (parallel shard processes), train, evaluate, then a summary.

RUNNER=local runs every stage as a local process of `python -m jobs <stage>`, so each stage
sees exactly what it would see in its own container: the environment and the store.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.errors import JobError
from common.processes import child, run_child, temp_prefix
from common.storage import RunLayout, Store, committed_shard_indices, damaged_by_size, read_metrics, withdraw_shard
from jobs.generate import find_generator
from jobs.runs import Lease, check_or_write_run_json
from jobs.settings import PipelineSettings, misspellings
from jobs.tasks import get_task

log = logging.getLogger(__name__)


def child_env(s: PipelineSettings, **overrides: Any) -> dict[str, str]:
    """The environment of a stage: the caller's, plus every resolved setting (so presets and
    the generated RUN_ID reach the children), plus overrides."""
    env = dict(os.environ)
    for variable, _ in misspellings(env):  # warned about once, by the pipeline; not again per stage
        del env[variable]
    for name, value in s.model_dump(mode="json").items():
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def stage(name: str) -> list[str]:
    return [sys.executable, "-m", "jobs", name]


def error_lines(log_text: str) -> str:
    """What a failed stage said: its lines that start with "error" (the generator's own message
    among them, not its usage footer), else its last three lines."""
    lines = log_text.strip().splitlines()
    errors = [line.strip() for line in lines if line.lstrip().lower().startswith("error")]
    return " / ".join(errors or lines[-3:])


def generate_locally(s: PipelineSettings, store: Store, layout: RunLayout, round_: int = 0) -> None:
    """Runs the round's missing shards as parallel processes sharing the cores; committed ones
    are skipped."""
    shards = range(round_ * s.shards, (round_ + 1) * s.shards)
    committed = [i for i in committed_shard_indices(store, layout) if i in shards]
    for index in damaged_by_size(store, layout, committed):
        print(f"generate: shard {index}'s data is missing or not the size its manifest records: generating it again")
        withdraw_shard(store, layout, index)
    todo = [i for i in shards if i not in set(committed_shard_indices(store, layout))]
    if not todo:
        print(f"generate: all {s.shards} shards of round {round_} already committed")
        return
    cores = os.cpu_count() or 1
    parallel = min(len(todo), cores)
    threads = s.threads or max(1, cores // parallel)
    print(f"generate: {len(todo)} of {s.shards} shards, {parallel} at a time, {threads} threads each")
    running: dict[int, subprocess.Popen[bytes]] = {}
    failed: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix=temp_prefix("generate")) as logs,
        tqdm(total=len(todo), desc="shards", unit="shard", file=sys.stderr) as bar,
        ExitStack() as children,  # stopped (SIGTERM: they clean up) and waited for if this one is stopped
    ):
        while todo or running:
            while todo and len(running) < parallel:
                index = todo.pop(0)
                env = child_env(s, shard_index=index, threads=threads)
                with open(Path(logs) / f"{index}.log", "wb") as log_file:
                    running[index] = children.enter_context(child(stage("generate"), env=env, stderr=log_file))
            for index, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[index]
                    bar.update(1)
                    if proc.returncode != 0:
                        said = error_lines((Path(logs) / f"{index}.log").read_text(errors="replace"))
                        failed.append(f"shard {index} (exit code {proc.returncode}: {said})")
            time.sleep(0.2)
    if failed:
        raise JobError(f"generate failed for {'; '.join(failed)}; rerun with RUN_ID={s.run_id} to retry only those")


def run_stage(s: PipelineSettings, name: str, **overrides: Any) -> None:
    proc = run_child(stage(name), env=child_env(s, **overrides))
    if proc.returncode != 0:
        raise JobError(f"the {name} stage exited with code {proc.returncode}; rerun with RUN_ID={s.run_id} to resume")


def summary(s: PipelineSettings, store: Store, layout: RunLayout, seconds: dict[str, float]) -> dict[str, Any]:
    manifests = [store.read_json(layout.shard_manifest(i)) for i in range(s.shards * s.rounds)]
    metrics = read_metrics(store, layout)
    # The last round's epochs: each round validates on more data, so losses compare only within one.
    last = max(m.get("round", 0) for m in metrics)
    best = min((m for m in metrics if m.get("round", 0) == last), key=lambda m: m["val_loss"])
    result: dict[str, Any] = {
        "run_id": s.run_id,
        "task": s.task,
        "samples": sum(m["rows"] for m in manifests),
        "games": sum(m["games"] for m in manifests),
        "seconds": seconds,
        "epochs": len(metrics),
        "best_epoch": best["epoch"],
        "val_loss": best["val_loss"],
        **{metric.key: best[metric.key] for metric in get_task(s.task).headline},
        "artifacts": store.display(layout.run),
    }
    report = f"{layout.eval}/report.json"
    if store.exists(report):
        result["evaluation"] = store.read_json(report).get("summary")
    return result


def stage_actions(s: PipelineSettings, store: Store, layout: RunLayout, api: Any = None) -> dict[str, Callable[[int], None]]:
    """What each stage does under the chosen runner, given the round."""
    if s.runner == "k8s":
        from jobs import cluster

        cluster.check_settings(s, store.local)
        api = api or cluster.batch_api()

        def on_cluster(stage: str) -> Callable[[int], None]:
            return lambda _round: cluster.run_stage_on_cluster(s, stage, api)

        return {stage: on_cluster(stage) for stage in ("generate", "train", "evaluate")}
    find_generator(s.generator_bin)  # a missing binary stops the run before any work
    if s.device in ("cuda", "mps"):  # so does a device this machine lacks, before generating
        from trainer.train import pick_device

        pick_device(s.device)
    return {
        "generate": lambda round_: generate_locally(s, store, layout, round_),
        "train": lambda round_: run_stage(s, "train", round=round_),
        "evaluate": lambda _round: run_stage(s, "evaluate"),
    }


def run_pipeline(s: PipelineSettings, api: Any = None) -> dict[str, Any]:
    store = Store(s.storage_url)
    layout = RunLayout(s.task, s.run_id)
    actions = stage_actions(s, store, layout, api)
    store.check()
    with Lease(store, layout):
        check_or_write_run_json(store, layout, s)
        return run_stages(s, store, layout, actions)


def train_or_regenerate(s: PipelineSettings, store: Store, layout: RunLayout, actions: dict[str, Callable[[int], None]], round_: int) -> None:
    """Trains; if training found damaged shards (it withdraws their commits as it reads them),
    generates those again and trains once more."""
    try:
        actions["train"](round_)
    except JobError:
        needed = range((round_ + 1) * s.shards)
        withdrawn = sorted(set(needed) - set(committed_shard_indices(store, layout)))
        if not withdrawn:
            raise
        print(f"train found damaged shards ({', '.join(map(str, withdrawn))}): generating them again, then training again", flush=True)
        for r in sorted({i // s.shards for i in withdrawn}):
            actions["generate"](r)
        actions["train"](round_)


def run_stages(s: PipelineSettings, store: Store, layout: RunLayout, actions: dict[str, Callable[[int], None]]) -> dict[str, Any]:
    episodes = get_task(s.task).episodes
    rounds = f" per round, {s.rounds} rounds" if s.rounds > 1 else ""
    print(f"run {s.run_id}: {s.games} {episodes} in {s.shards} shards, {s.epochs} epochs{rounds} -> {store.display(layout.run)} ({s.runner})")
    seconds: dict[str, float] = {}
    plan = [(name, r) for r in range(s.rounds) for name in ("generate", "train")] + [("evaluate", s.rounds - 1)]
    for name, round_ in plan:
        started = time.perf_counter()
        print(f"== {name}" + (f" (round {round_ + 1} of {s.rounds})" if s.rounds > 1 and name != "evaluate" else ""), flush=True)
        try:
            if name == "train":
                train_or_regenerate(s, store, layout, actions, round_)
            else:
                actions[name](round_)
        except JobError as e:
            # What a report reader (CI's step summary) needs when no evaluation report comes.
            store.write_json(layout.failure, {"stage": name, "round": round_, "error": str(e), "runner": s.runner})
            raise
        seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - started, 1)
    if store.exists(layout.failure):
        store.delete(layout.failure)  # an earlier attempt's failure, now behind us
    result = summary(s, store, layout, seconds)
    store.write_json(f"{layout.run}/summary.json", result)
    return result


def print_summary(result: dict[str, Any]) -> None:
    task = get_task(result["task"])
    headline = ", ".join(metric.show(result) for metric in task.headline)
    print("\n== summary")
    print(f"run             {result['run_id']}")
    print(f"data            {result['samples']:,} samples from {result['games']:,} {task.episodes}")
    print("time            " + ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items()))
    print(f"training        {result['epochs']} epochs, best {result['best_epoch']}: val loss {result['val_loss']:.4f} ({headline})")
    if result.get("evaluation"):
        print(f"evaluation      {result['evaluation']}")
    print(f"artifacts       {result['artifacts']}")
