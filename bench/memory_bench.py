"""Peak memory of a predator training by dataset size: the real train job on 0.5M, 2M and 10M
samples (the pursuit teacher's shards, 40 episodes of 1,500 steps each, about 50 MB), streamed
(MEMORY_BUDGET=0) and, where three copies fit half this machine's memory, loaded whole. The peak
is the kernel's maximum resident set of the train process (`wait4`'s ru_maxrss), one epoch and
its validation each. The network is made small (the data path is what is measured); the smaller
datasets are the first shards of the largest (hard links), so every size reads the same bytes.

Writes bench/results/memory.{json,md} and memory.png.

Usage: python bench/memory_bench.py [--sizes 0.5,2,10] [--store /var/tmp/ludus-memory-bench] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GAMES_PER_SHARD = 40
ROWS_PER_GAME = 1500  # at most (an episode ends early when every boid is caught)
DATA = {"TASK": "predator", "TEACHER": "pursuit", "STEPS": "1500", "MAX_BOIDS": "50", "SEED": "0"}
TRAIN = {
    "EPOCHS": "1",
    "BATCH_SIZE": "1024",
    "DEVICE": "cpu",
    "D_MODEL": "16",
    "N_HEADS": "2",
    "N_LAYERS": "1",
    "FFN_HIDDEN": "32",
    "LOG_LEVEL": "INFO",
}


def job_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MEMORY_BUDGET", "SHUFFLE_SHARDS", "PREFETCH_SHARDS") and not k.startswith("TRAIN_")}
    return env | {"PYTHONUNBUFFERED": "1", **values}


def generate(store: Path, run_id: str, shards: int) -> None:
    """The largest run's shards, one generate job each (a rerun skips committed shards)."""
    started = time.perf_counter()
    for index in range(shards):
        env = job_env(**DATA, STORAGE_URL=str(store), RUN_ID=run_id, SHARDS=str(shards), GAMES=str(shards * GAMES_PER_SHARD), SHARD_INDEX=str(index))
        command = [sys.executable, "-m", "jobs", "generate"]
        result = subprocess.run(command, cwd=ROOT, env=env | {"LOG_LEVEL": "WARNING"}, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"generate shard {index} failed:\n{result.stderr[-2000:]}")
        print(f"\rgenerated {index + 1}/{shards} shards ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print()


def linked_run(store: Path, source: str, run_id: str, shards: int) -> None:
    """A run holding the first `shards` shards of `source`, hard-linked (no new bytes)."""
    src, dst = store / "predator" / "runs" / source / "data", store / "predator" / "runs" / run_id / "data"
    shutil.rmtree(dst.parent, ignore_errors=True)
    dst.mkdir(parents=True)
    for index in range(shards):
        for suffix in ("safetensors", "json"):
            os.link(src / f"shard-{index:05d}.{suffix}", dst / f"shard-{index:05d}.{suffix}")


def train(store: Path, run_id: str, shards: int, budget: str) -> dict[str, Any]:
    """One training epoch and its validation; returns the peak RSS, the time and the path taken."""
    shutil.rmtree(store / "predator" / "runs" / run_id / "train", ignore_errors=True)
    shutil.rmtree(store / "predator" / "runs" / run_id / "model", ignore_errors=True)
    env = job_env(**DATA, **TRAIN, STORAGE_URL=str(store), RUN_ID=run_id, SHARDS=str(shards), MEMORY_BUDGET=budget)
    started = time.perf_counter()
    log = store / f"{run_id}-{budget}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jobs", "train"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train {run_id} (MEMORY_BUDGET={budget}) failed:\n{text[-3000:]}")
    metrics = json.loads((store / "predator" / "runs" / run_id / "train" / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "path": "streamed" if "streaming the data" in text else "loaded",
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux reports KiB
        "seconds": round(seconds),
        "samples_per_second": round(metrics["samples_per_second"]),
        "val_loss": round(metrics["val_loss"], 5),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for kind, marker in (("streamed", "o"), ("loaded", "s")):
        points = [(r["samples"] / 1e6, r["peak_rss_mb"] / 1024) for r in rows if r["path"] == kind]
        if points:
            ax.plot(*zip(*points, strict=True), marker=marker, label=kind)
    shards = [(r["samples"] / 1e6, r["shard_gb"]) for r in rows if r["path"] == "streamed"]
    ax.plot(*zip(*shards, strict=True), linestyle=":", color="grey", label="the shards' bytes")
    ax.set_xscale("log")
    ax.set_xlabel("predator samples (millions)")
    ax.set_ylabel("GB")
    ax.set_title("peak RSS of one training epoch, by dataset size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5,2,10", help="dataset sizes in millions of samples")
    parser.add_argument("--store", type=Path, default=Path("/var/tmp/ludus-memory-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the shards (about 8.5 GB for 10M)")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    shards = {size: math.ceil(size * 1e6 / (GAMES_PER_SHARD * ROWS_PER_GAME)) for size in sizes}
    largest = max(shards.values())
    generate(args.store, "memory-all", largest)
    half_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    rows = []
    for size in sizes:
        run_id = f"memory-{size:g}m"
        linked_run(args.store, "memory-all", run_id, shards[size])
        data = args.store / "predator" / "runs" / run_id / "data"
        manifests = [json.loads((data / f"shard-{i:05d}.json").read_text()) for i in range(shards[size])]
        samples, shard_bytes = sum(m["rows"] for m in manifests), sum(m["bytes"] for m in manifests)
        budgets = ["0"] + (["auto"] if 3 * shard_bytes <= half_ram else [])
        for budget in budgets:
            result = train(args.store, run_id, shards[size], budget)
            rows.append({"samples": samples, "shards": shards[size], "shard_gb": round(shard_bytes / 1e9, 2), "memory_budget": budget, **result})
            print(json.dumps(rows[-1]), flush=True)
    streamed = [r["peak_rss_mb"] for r in rows if r["path"] == "streamed"]
    record = {
        "command": f"python bench/memory_bench.py --sizes {args.sizes}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {half_ram * 2 / 2**30:.0f} GiB, no GPU used",
        "data": {**DATA, "games_per_shard": GAMES_PER_SHARD},
        "train": TRAIN | {"SHUFFLE_SHARDS": "4 (default)", "PREFETCH_SHARDS": "2 (default)"},
        "statistic": "peak resident set (ru_maxrss) of the train job's process, one run each",
        "streamed_spread": round(max(streamed) / min(streamed) - 1, 3),
        "goal": "streamed peak flat within 15% from 0.5M to 10M samples",
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["| samples | shards (GB) | MEMORY_BUDGET | path | peak RSS (MB) | seconds | samples/s |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r['samples']:,} | {r['shards']} ({r['shard_gb']}) | {r['memory_budget']} | {r['path']} | {r['peak_rss_mb']:,} | "
        f"{r['seconds']} | {r['samples_per_second']:,} |"
        for r in rows
    ]
    lines.append(f"\nStreamed: the largest peak is {record['streamed_spread']:.1%} above the smallest (goal: within 15%).")
    (RESULTS / "memory.md").write_text("\n".join(lines) + "\n")
    plot(rows, RESULTS / "memory.png")
    print((RESULTS / "memory.md").read_text())
    if not args.keep:
        shutil.rmtree(args.store)


if __name__ == "__main__":
    main()
