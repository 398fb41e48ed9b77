"""Data-parallel training on this machine's CPU: 1 rank with every core against one rank per core
(`TRAIN_PROCESSES`, torchrun and gloo), equal total threads, the same shards, seed and global
batch. Runs the real train job, interleaved (1, N, 1, N, ...), and takes medians of the
samples/s of every epoch after the first. Writes bench/results/ddp.{json,md} and ddp-loss.png
(the validation loss per epoch of both, from the first repeat).

Usage: python bench/ddp_bench.py [--repeats 2] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Per task: the data (teacher-labelled, fast to make) and the network as the defaults have it.
TASKS: dict[str, dict[str, str]] = {
    "ur": {"GAMES": "1000", "DEPTH": "1", "BATCH_SIZE": "1024"},
    "predator": {"GAMES": "60", "TEACHER": "pursuit", "STEPS": "1500", "MAX_BOIDS": "50", "BATCH_SIZE": "256"},
}
SETTINGS = {"SHARDS": "2", "SEED": "0", "DEVICE": "cpu", "PATIENCE": "100", "LOG_LEVEL": "WARNING", "MIXED_PRECISION": "false"}


def job_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_", "OMP_"))}
    return env | {"PYTHONUNBUFFERED": "1", **values}


def run(job: str, env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "jobs", job], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"python -m jobs {job} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def train_once(store: Path, task: str, run_id: str, ranks: int, cores: int, epochs: int) -> list[dict[str, Any]]:
    """Generates the run's shards (the same for every run: same settings and seed), trains, and
    returns the metrics of every epoch."""
    values = {**SETTINGS, **TASKS[task], "TASK": task, "STORAGE_URL": str(store), "RUN_ID": run_id, "EPOCHS": str(epochs)}
    for index in range(2):
        run("generate", job_env(**values, SHARD_INDEX=str(index), THREADS=str(cores)))
    threads = {"OMP_NUM_THREADS": str(cores // ranks)}  # the train job keeps it for each rank
    run("train", job_env(**values, TRAIN_PROCESSES=str(ranks), **threads))
    lines = (store / task / "runs" / run_id / "train" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def bench(task: str, cores: int, repeats: int, epochs: int, store: Path) -> dict[str, Any]:
    speeds: dict[int, list[float]] = {1: [], cores: []}
    losses: dict[int, list[float]] = {}
    for repeat in range(repeats):
        for ranks in (1, cores):  # interleaved: the machine is shared and noisy
            metrics = train_once(store, task, f"{task}-{ranks}r-{repeat}", ranks, cores, epochs)
            speeds[ranks] += [m["samples_per_second"] for m in metrics[1:]]  # the first epoch warms up
            losses.setdefault(ranks, [m["val_loss"] for m in metrics])
            print(f"{task}: {ranks} rank(s), repeat {repeat + 1}: {statistics.median(speeds[ranks][-(epochs - 1) :]):,.0f} samples/s", flush=True)
    one, many = statistics.median(speeds[1]), statistics.median(speeds[cores])
    return {
        "task": task,
        "data": TASKS[task],
        "samples_per_second": {"1 rank": round(one), f"{cores} ranks": round(many)},
        "ratio": round(many / one, 3),
        "goal": 0.8,
        "val_loss_per_epoch": {"1 rank": losses[1], f"{cores} ranks": losses[cores]},
        "last_val_loss_gap": round(abs(losses[cores][-1] - losses[1][-1]) / losses[1][-1], 4),
        "epochs_timed": len(speeds[1]),
        "repeats": repeats,
    }


def plot(results: list[dict[str, Any]], cores: int, path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6))
    for ax, result in zip(axes, results, strict=True):
        for label, losses in result["val_loss_per_epoch"].items():
            ax.plot(range(1, len(losses) + 1), losses, marker="o", label=label)
        ax.set_title(f"{result['task']}: validation loss, 1 rank x {cores} threads vs {cores} ranks x 1")
        ax.title.set_fontsize(9)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--tasks", default=",".join(TASKS), help="a comma-separated subset of " + ", ".join(TASKS))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    if cores < 2:
        raise SystemExit("this benchmark needs at least 2 cores")
    with tempfile.TemporaryDirectory(prefix="ludus-ddp-bench-") as folder:
        results = [bench(task, cores, args.repeats, args.epochs, Path(folder)) for task in args.tasks.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    if (RESULTS / "ddp.json").exists():  # a run of some tasks keeps the others' latest figures
        ran = {r["task"] for r in results}
        kept = [r for r in json.loads((RESULTS / "ddp.json").read_text())["results"] if r["task"] not in ran]
        results = sorted(kept + results, key=lambda r: list(TASKS).index(r["task"]))
    record = {
        "command": f"python bench/ddp_bench.py --repeats {args.repeats} --epochs {args.epochs} --tasks {args.tasks}",
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, no GPU used",
        "statistic": "median of the samples/s of every epoch after the first, over the repeats (interleaved)",
        "results": results,
    }
    (RESULTS / "ddp.json").write_text(json.dumps(record, indent=2) + "\n")
    rows = [
        f"| {r['task']} | {r['samples_per_second']['1 rank']:,} | {r['samples_per_second'][f'{cores} ranks']:,} | {r['ratio']:.2f} (goal 0.80) | "
        f"{r['val_loss_per_epoch']['1 rank'][-1]:.4f} / {r['val_loss_per_epoch'][f'{cores} ranks'][-1]:.4f} |"
        for r in results
    ]
    header = f"| task | 1 rank x {cores} threads (samples/s) | {cores} ranks x 1 thread | ratio | last val loss (1 / {cores}) |\n"
    header += "|---|---|---|---|---|\n"
    (RESULTS / "ddp.md").write_text(header + "\n".join(rows) + "\n")
    plot(results, cores, RESULTS / "ddp-loss.png")
    print((RESULTS / "ddp.md").read_text())


if __name__ == "__main__":
    main()
