"""Does a finished 2-rank gloo training ever end as a failure? Runs N times in a row either
a plain 10-line DDP script under torchrun (`--plain`: the hazard, as PyTorch ships it) or the
train job with TRAIN_PROCESSES=2 on a tiny Ur run (ours), and counts the runs whose work was done
but whose exit code says otherwise, and those that abort ("terminate called ...").

    .venv/bin/python experiments/infra/ddp_exit.py --runs 50            # the train job
    .venv/bin/python experiments/infra/ddp_exit.py --runs 50 --plain    # the plain script

Writes experiments/infra/ddp-exit-{plain,job}.json."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAIN = """
import torch, torch.distributed as dist
dist.init_process_group("gloo")
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(20):
    opt.zero_grad(); model(torch.randn(16, 8)).pow(2).mean().backward(); opt.step()
dist.barrier(); dist.destroy_process_group()
print("done", flush=True)
"""
TINY = {"GAMES": "40", "SHARDS": "2", "EPOCHS": "1", "DEPTH": "1", "BATCH_SIZE": "256", "DEVICE": "cpu", "TASK": "ur", "RUN_ID": "ddp"}


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **extra}


def plain_run(folder: Path) -> tuple[int, bool, str]:
    script = folder / "plain.py"
    script.write_text(PLAIN)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, env=env(OMP_NUM_THREADS="1"), check=False)
    return out.returncode, out.stdout.count("done") == 2, out.stderr


def job_run(store: Path, folder: Path) -> tuple[int, bool, str]:
    copy = folder / "store"
    shutil.copytree(store, copy)
    out = subprocess.run(
        [sys.executable, "-m", "jobs", "train"], cwd=ROOT, capture_output=True, text=True, check=False,
        env=env(**TINY, STORAGE_URL=str(copy), TRAIN_PROCESSES="2"),
    )  # fmt: skip
    done = (copy / "ur" / "runs" / "ddp" / "model" / "weights.json").exists()
    return out.returncode, done, out.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        if not args.plain:
            for index in ("0", "1"):
                subprocess.run(
                    [sys.executable, "-m", "jobs", "generate"], cwd=ROOT, check=True, env=env(**TINY, STORAGE_URL=str(store), SHARD_INDEX=index)
                )
        for i in range(args.runs):
            folder = Path(tmp) / f"run{i}"
            folder.mkdir()
            started = time.perf_counter()
            code, done, err = plain_run(folder) if args.plain else job_run(store, folder)
            rows.append(
                {
                    "run": i,
                    "exit_code": code,
                    "work_done": done,
                    "aborted": "terminate called" in err,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            shutil.rmtree(folder)
    mode = "plain" if args.plain else "job"
    summary = {
        "runs": len(rows),
        "done_but_failed": sum(r["work_done"] and r["exit_code"] != 0 for r in rows),
        "failed_without_work": sum(not r["work_done"] and r["exit_code"] != 0 for r in rows),
        "reported_done_without_work": sum(not r["work_done"] and r["exit_code"] == 0 for r in rows),
        "aborted_at_exit": sum(r["aborted"] for r in rows),
    }
    command = f".venv/bin/python experiments/infra/ddp_exit.py --runs {args.runs}" + (" --plain" if args.plain else "")
    record = {
        "what": f"2-rank gloo runs under torchrun, {mode}",
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "summary": summary,
        "runs": rows,
    }
    (ROOT / "experiments" / "infra" / f"ddp-exit-{mode}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
