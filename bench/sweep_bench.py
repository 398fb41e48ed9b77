"""What a sweep adds to its trainings: `make sweep` with 8 trials at PARALLEL=2 (no pruning, so
every trial trains all its epochs) against the same 8 trainings started by hand, the train job
with each trial's settings on the sweep run's shards (DATA_RUN_ID):

- by hand, 2 at a time with 1 thread each (the sweep's own threads): the sweep's overhead;
- by hand, one after another with 2 threads each: the other way to use both cores.

Ur at a small size (the trials take tens of seconds, so the sweep's own work shows). Wall times,
interleaved over the repeats (sweep, by hand 2 at a time, one after another, ...), medians.
Writes bench/results/sweep.{json,md}.

Usage: python bench/sweep_bench.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TRIALS, PARALLEL = 8, 2
SETTINGS = {
    "TASK": "ur",
    "GAMES": "400",
    "DEPTH": "1",
    "SHARDS": "2",
    "SEED": "0",
    "DEVICE": "cpu",
    "EVAL_GAMES": "20",
    "EVAL_OPPONENTS": "random",
    "LOG_LEVEL": "WARNING",
    "SWEEP_SPACE": "learning_rate=0.001..0.01:log,batch_size=256|512,epochs=4..8",
    "SWEEP_PRUNER": "none",
}


def env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_", "OMP_", "SWEEP_"))}
    return base | {"PYTHONUNBUFFERED": "1", **SETTINGS, **values}


def timed(commands: list[tuple[list[str], dict[str, str]]], at_once: int) -> float:
    """Runs the commands, `at_once` at a time; returns the wall time."""
    started = time.perf_counter()
    pending, running = list(commands), []
    while pending or running:
        while pending and len(running) < at_once:
            args, environment = pending.pop(0)
            log = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the child ends) a file, not a pipe: a full pipe would stall the child
            running.append((subprocess.Popen(args, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=log), log))
        for proc, log in list(running):
            if proc.poll() is not None:
                running.remove((proc, log))
                log.seek(0)
                said = log.read().decode(errors="replace")[-2000:]
                log.close()
                if proc.returncode != 0:
                    raise SystemExit(f"{proc.args} failed:\n{said}")
        time.sleep(0.1)
    return time.perf_counter() - started


def sweep(store: Path, run_id: str) -> tuple[float, list[dict[str, Any]]]:
    """The sweep's wall time (its shards are there already) and its trials' settings."""
    seconds = timed(
        [([sys.executable, "-m", "jobs", "sweep"], env(STORAGE_URL=str(store), RUN_ID=run_id, TRIALS=str(TRIALS), PARALLEL=str(PARALLEL)))], 1
    )
    trials = sorted((store / "ur" / "runs" / run_id / "sweep" / "trials").glob("*.json"))
    return seconds, [json.loads(p.read_text())["params"] for p in trials]


def by_hand(store: Path, run_id: str, params: list[dict[str, Any]], at_once: int, threads: int, tag: str) -> float:
    commands = []
    for n, p in enumerate(params):
        values = {k.upper(): str(v) for k, v in p.items()}
        commands.append(
            (
                [sys.executable, "-m", "jobs", "train"],
                env(STORAGE_URL=str(store), RUN_ID=f"{run_id}-{tag}{n}", DATA_RUN_ID=run_id, OMP_NUM_THREADS=str(threads), **values),
            )
        )
    return timed(commands, at_once)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    times: dict[str, list[float]] = {"sweep": [], "by hand, 2 at a time x 1 thread": [], "by hand, 1 at a time x 2 threads": []}
    with tempfile.TemporaryDirectory(prefix="ludus-sweep-bench-") as folder:
        store = Path(folder)
        for index in range(2):  # the shards, once, shared by every run below
            result = subprocess.run(
                [sys.executable, "-m", "jobs", "generate"], cwd=ROOT, env=env(STORAGE_URL=folder, RUN_ID="data", SHARD_INDEX=str(index)), check=False
            )
            if result.returncode != 0:
                raise SystemExit("generate failed")
        for repeat in range(args.repeats):
            run_id = f"sweep{repeat}"
            shutil.copytree(store / "ur" / "runs" / "data" / "data", store / "ur" / "runs" / run_id / "data")
            seconds, params = sweep(store, run_id)
            times["sweep"].append(seconds)
            times["by hand, 2 at a time x 1 thread"].append(by_hand(store, run_id, params, PARALLEL, cores // PARALLEL, "p"))
            times["by hand, 1 at a time x 2 threads"].append(by_hand(store, run_id, params, 1, cores, "s"))
            print(json.dumps({k: round(v[-1], 1) for k, v in times.items()}), flush=True)
    medians = {k: round(statistics.median(v), 1) for k, v in times.items()}
    overhead = medians["sweep"] / medians["by hand, 2 at a time x 1 thread"] - 1
    record = {
        "command": f"python bench/sweep_bench.py --repeats {args.repeats}",
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, no GPU used",
        "settings": SETTINGS | {"TRIALS": TRIALS, "PARALLEL": PARALLEL},
        "statistic": "median wall time over the repeats, interleaved; the shards exist; the sweep includes evaluating its best",
        "seconds": medians,
        "all_seconds": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "sweep_overhead": round(overhead, 3),
        "goal": "at most 10% over the same trainings by hand",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["| how the 8 trainings ran | wall time (s, median) |", "|---|---|", *(f"| {k} | {v} |" for k, v in medians.items())]
    lines.append(f"\nThe sweep took {overhead:+.1%} against the same trainings by hand, 2 at a time with 1 thread each (goal: at most +10%).")
    (RESULTS / "sweep.md").write_text("\n".join(lines) + "\n")
    print((RESULTS / "sweep.md").read_text())


if __name__ == "__main__":
    main()
