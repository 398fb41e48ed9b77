"""The streamed 2-rank path, many times in a row: the real train job with TRAIN_PROCESSES=2 and
MEMORY_BUDGET=0 (every rank streams its own shards and the ranks agree before each step), on
tiny shards of each task from the real generator, 3 shards so that the ranks' shares differ.
A run counts as good when it exits 0 and its metrics hold every epoch; as bad otherwise.

Usage: python experiments/infra/streamed_ddp_repeats.py [--runs 25]
Writes experiments/infra/streamed-ddp-repeats.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASKS = {
    "ur": {"GAMES": "30", "DEPTH": "1"},
    "predator": {"GAMES": "9", "STEPS": "80", "MAX_BOIDS": "8", "TEACHER": "pursuit"},
}
COMMON = {"SHARDS": "3", "EPOCHS": "2", "BATCH_SIZE": "64", "DEVICE": "cpu", "SEED": "3", "LOG_LEVEL": "WARNING"}


def env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_", "OMP_", "MEMORY_"))}
    return base | {"PYTHONUNBUFFERED": "1", **values}


def job(name: str, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobs", name], cwd=ROOT, env=env(**values), capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="runs per task")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="ludus-streamed-ddp-") as folder:
        for task, settings in TASKS.items():
            data = Path(folder) / task / "data"
            values = {**COMMON, **settings, "TASK": task, "RUN_ID": "r", "STORAGE_URL": str(data)}
            for index in range(3):
                result = job("generate", values | {"SHARD_INDEX": str(index), "THREADS": "2"})
                if result.returncode != 0:
                    raise SystemExit(result.stderr)
            for run in range(args.runs):
                store = Path(folder) / task / f"run{run}"
                shutil.copytree(data, store)
                started = time.perf_counter()
                result = job("train", values | {"STORAGE_URL": str(store), "TRAIN_PROCESSES": "2", "MEMORY_BUDGET": "0"})
                metrics = store / task / "runs" / "r" / "train" / "metrics.jsonl"
                epochs = len(metrics.read_text().splitlines()) if metrics.exists() else 0
                good = result.returncode == 0 and epochs == int(COMMON["EPOCHS"])
                seconds = round(time.perf_counter() - started, 1)
                runs.append({"task": task, "run": run, "exit_code": result.returncode, "epochs": epochs, "good": good, "seconds": seconds})
                print(json.dumps(runs[-1]) + ("" if good else f"\n{result.stderr[-2000:]}"), flush=True)
                shutil.rmtree(store)
    summary = {task: {"runs": sum(r["task"] == task for r in runs), "bad": sum(r["task"] == task and not r["good"] for r in runs)} for task in TASKS}
    record = {
        "what": "the streamed 2-rank train job (MEMORY_BUDGET=0, TRAIN_PROCESSES=2), 3 tiny shards per task",
        "command": f".venv/bin/python experiments/infra/streamed_ddp_repeats.py --runs {args.runs}",
        "date": date.today().isoformat(),
        "summary": summary,
        "runs": runs,
    }
    (Path(__file__).parent / "streamed-ddp-repeats.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
