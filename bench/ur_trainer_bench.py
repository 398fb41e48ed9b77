"""Trainer benchmark: sample-steps/s of our loop and of a faithful re-creation of the old loop,
in one run, on the same generated dataset. Writes bench/results/ur-trainer.{json,md}.

The old loop: two separate networks with their own Adam, a torch DataLoader over a per-sample
Dataset with batch 64, a device copy per batch, and softmax applied before CrossEntropyLoss
(which applies it again). Usage: python bench/ur_trainer_bench.py [--games N] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.shards import generated_shard  # noqa: E402
from trainer import TrainConfig, Trainer  # noqa: E402
from trainer.data import split_by_episode  # noqa: E402
from trainer.samples import Samples  # noqa: E402
from trainer.tasks.ur.learner import UrLearner  # noqa: E402
from trainer.tasks.ur.model import mlp  # noqa: E402


def make_dataset(games: int) -> Samples:
    return generated_shard(UrLearner(), "--games", str(games), "--depth", "2", "--seed", "7")


class OldDataset(Dataset):
    """Per-sample indexing, as the old script's Dataset did."""

    def __init__(self, data: Samples) -> None:
        self.x, self.v, self.p = data["features"].numpy(), data["value"].numpy(), data["best"].numpy()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        return torch.tensor(self.x[i]), torch.tensor(self.v[i]), torch.tensor(self.p[i])


def old_loop(data: Samples, epochs: int, device: torch.device) -> float:
    value_net, policy_net = mlp(1).to(device), nn.Sequential(mlp(7), nn.Softmax(dim=1)).to(device)
    value_opt, policy_opt = torch.optim.Adam(value_net.parameters(), 1e-3), torch.optim.Adam(policy_net.parameters(), 1e-3)
    loader = DataLoader(OldDataset(data), batch_size=64, shuffle=True)
    ce = nn.CrossEntropyLoss()
    started, seen = time.perf_counter(), 0
    for _ in range(epochs):
        for x, v, p in loader:
            x, v, p = x.to(device), v.to(device), p.to(device)
            value_loss = nn.functional.mse_loss(torch.tanh(value_net(x)).squeeze(1), v)
            value_opt.zero_grad()
            value_loss.backward()
            value_opt.step()
            policy_loss = ce(policy_net(x), p)  # softmax output into CrossEntropyLoss: double softmax
            policy_opt.zero_grad()
            policy_loss.backward()
            policy_opt.step()
            seen += len(x)
    return seen / (time.perf_counter() - started)


def our_loop(train: Samples, val: Samples, epochs: int, batch_size: int, device: str, lr: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        values = {"epochs": epochs, "batch_size": batch_size, "device": device, "learning_rate": lr, "patience": epochs}
        config = TrainConfig(storage_url=tmp, run_id="bench", **values)  # type: ignore[arg-type]
        trainer = Trainer(config, UrLearner(), data=(train, val))
        trainer.prepare()
        speeds = [trainer._train_epoch(e)[1] for e in range(epochs)]
        return statistics.median(speeds), trainer.evaluate(trainer.val_data)["val_loss"]  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="1024,4096")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    data = make_dataset(args.games)
    train, val = split_by_episode(data, 0.1, seed=0)
    device = torch.device(args.device)
    print(f"dataset: {len(train)} training samples; device {device}; torch threads {torch.get_num_threads()}", flush=True)
    old = old_loop(train, 1, device)
    print(f"old loop (batch 64, DataLoader, two Adams, double softmax): {old:,.0f} sample-steps/s", flush=True)
    rows = []
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        speed, val_loss = our_loop(train, val, args.epochs, bs, args.device, 2e-3)
        rows.append({"batch_size": bs, "sample_steps_per_second": speed, "ratio_to_old": speed / old, "val_loss_after": val_loss})
        print(f"ours, batch {bs}: {speed:,.0f} sample-steps/s = {speed / old:.1f}x the old loop", flush=True)
    name = "ur-trainer" if device.type == "cpu" else f"ur-trainer-{device.type}"
    machine = {"cpu_count": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
    report = {"machine": machine, "train_samples": len(train), "epochs": args.epochs, "statistic": "median over epochs",
              "old_loop_sample_steps_per_second": old, "ours": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| loop | batch | sample-steps/s | vs old |", "|---|---|---|---|", f"| old (re-created) | 64 | {old:,.0f} | 1.0x |"]
    lines += [f"| ours | {r['batch_size']} | {r['sample_steps_per_second']:,.0f} | {r['ratio_to_old']:.1f}x |" for r in rows]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
