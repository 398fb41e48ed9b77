"""The compatible Ur file in the old engine's eyes: the mean probability that a softmax over all
7 policy outputs (the old engine's rule) puts on illegal pieces, over validation positions of
real teacher games, for a model trained without and with the illegal-mass term
(trainer/tasks/ur/learner.py), on the same shards, seeds and epochs; with the masked policy's
accuracy and the value MSE, which must not get worse. Writes experiments/ur/illegal.{json,md}.
Usage: python experiments/ur/illegal_mass.py [--games 400] [--depth 2] [--epochs 10]"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.storage import RunLayout, Store  # noqa: E402
from trainer import TrainConfig, Trainer  # noqa: E402
from trainer.data import load_run_data, split_by_episode  # noqa: E402
from trainer.tasks.ur.config import UrTrainOptions  # noqa: E402
from trainer.tasks.ur.export import from_compat  # noqa: E402
from trainer.tasks.ur.learner import UrLearner  # noqa: E402


def generate(store: Path, run_id: str, games: int, depth: int) -> None:
    for index in range(2):
        settings = {"TASK": "ur", "STORAGE_URL": str(store), "RUN_ID": run_id, "SHARDS": "2", "SHARD_INDEX": str(index)}
        env = dict(os.environ, **settings, GAMES=str(games), DEPTH=str(depth))
        subprocess.run([sys.executable, "-m", "jobs", "generate"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


@torch.no_grad()
def measure(store: Store, run_id: str) -> dict[str, float]:
    layout = RunLayout("ur", run_id)
    nets = from_compat(store.read_json(layout.model_file("compat_weights.json")), "compat").eval()
    data, _ = load_run_data(store, layout, UrLearner(), 2)
    _, val = split_by_episode(data, 0.1, 0)
    value, logits = nets(val["features"])
    legal = val["legal"]
    illegal = (logits.softmax(dim=1) * ~legal).sum(dim=1)
    chosen = logits.masked_fill(~legal, float("-inf")).argmax(dim=1)
    return {
        "illegal_probability": float(illegal.mean()),
        "positions": len(val),
        "policy_accuracy": float((chosen == val["best"]).float().mean()),
        "value_mse": float(((value - val["value"]) ** 2).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, default=400)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "ur")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, "without", args.games, args.depth)
        shutil.copytree(root / "ur" / "runs" / "without" / "data", root / "ur" / "runs" / "with" / "data")
        store = Store(str(root))
        for run_id, weight in (("without", 0.0), ("with", UrTrainOptions().illegal_mass_weight)):
            config = TrainConfig(storage_url=str(root), run_id=run_id, shards=2, epochs=args.epochs, device="cpu")
            Trainer(config, UrLearner(UrTrainOptions(illegal_mass_weight=weight))).train()
            rows.append({"illegal_mass_weight": weight, **measure(store, run_id)})
            print(json.dumps(rows[-1]), flush=True)
    setup = {"games": args.games, "depth": args.depth, "epochs": args.epochs, "shards": 2}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "illegal.json").write_text(json.dumps({"setup": setup, "rows": rows}, indent=2) + "\n")
    lines = [
        "| illegal-mass term | illegal probability (old engine's softmax) | policy accuracy (masked) | value MSE | positions |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        term = "with" if r["illegal_mass_weight"] else "without"
        lines.append(f"| {term} | {r['illegal_probability']:.1%} | {r['policy_accuracy']:.1%} | {r['value_mse']:.4f} | {r['positions']} |")
    text = f"{args.games} teacher games at depth {args.depth}, {args.epochs} epochs, validation positions.\n\n" + "\n".join(lines) + "\n"
    (args.out / "illegal.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
