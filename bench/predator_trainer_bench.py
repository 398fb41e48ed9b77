"""Predator trainer benchmark: sample-steps/s of our loop and of a faithful re-creation of the
old predator loop, in one run, on the same generated dataset (planner episodes). Writes
bench/results/predator-trainer.{json,md} (or predator-trainer-cuda.* on a GPU).

The old loop, as the old system had it: a torch DataLoader over a per-sample Dataset that hands
out each sample's boids as a list, batch 32, tokens built per sample in Python inside `forward`
(one projection call per boid), post-norm blocks (`nn.TransformerEncoderLayer` as is), padding
to the batch's largest flock with a key-padding mask, Adam. Ours: the Trainer with the predator
learner (data on the device, batches drawn by index and grouped by flock size, the CLS row only
in the last block).

It also counts the floating-point operations of one of our training steps (torch's FLOP counter
on real batches) and times the model's linear layers alone, forward and backward, at the same
batch and token shapes: the sample-steps/s those matrix products allow is a ceiling for any loop
that trains this model with them on this device. Usage: python bench/predator_trainer_bench.py
[--episodes N] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.shards import generated_shard  # noqa: E402
from trainer import TrainConfig, Trainer  # noqa: E402
from trainer.data import split_by_episode  # noqa: E402
from trainer.samples import Samples  # noqa: E402
from trainer.tasks.predator.learner import PredatorLearner  # noqa: E402
from trainer.train import add  # noqa: E402


def make_dataset(episodes: int) -> Samples:
    return generated_shard(PredatorLearner(), "--episodes", str(episodes), "--teacher", "planner", "--seed", "7")


class OldDataset(Dataset):
    """One sample at a time, its boids as a Python list of 4-vectors."""

    def __init__(self, data: Samples) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        n = int(self.data["count"][i])
        return {
            "context": self.data["context"][i].tolist(),
            "predator": self.data["predator"][i].tolist(),
            "boids": self.data["boids"][i, :n].tolist(),
            "target": self.data["target"][i].tolist(),
        }


def old_collate(items: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return items


class OldModel(nn.Module):
    """The old model: post-norm encoder, tokens assembled per sample in Python."""

    def __init__(self, d: int = 48, heads: int = 4, layers: int = 3, ffn: int = 96) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(d))
        self.types = nn.Embedding(4, d)
        self.ctx, self.pred, self.boid = nn.Linear(2, d), nn.Linear(4, d), nn.Linear(4, d)
        layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(d, 2)

    def forward(self, batch: list[dict]) -> torch.Tensor:  # type: ignore[type-arg]
        sequences = []
        for sample in batch:
            tokens = [self.cls + self.types.weight[0]]
            tokens.append(self.ctx(torch.tensor(sample["context"])) + self.types.weight[1])
            tokens.append(self.pred(torch.tensor(sample["predator"])) + self.types.weight[2])
            for boid in sample["boids"]:
                tokens.append(self.boid(torch.tensor(boid)) + self.types.weight[3])
            sequences.append(torch.stack(tokens))
        longest = max(len(s) for s in sequences)
        padded = torch.stack([F.pad(s, (0, 0, 0, longest - len(s))) for s in sequences])
        mask = torch.stack([torch.arange(longest) >= len(s) for s in sequences])
        return torch.tanh(self.out(self.encoder(padded, src_key_padding_mask=mask)[:, 0]))


def old_loop(data: Samples, samples: int) -> float:
    model = OldModel()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loader = DataLoader(OldDataset(data), batch_size=32, shuffle=True, collate_fn=old_collate)
    started, seen = time.perf_counter(), 0
    for batch in loader:
        target = torch.tensor([s["target"] for s in batch])
        loss = F.mse_loss(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(batch)
        if seen >= samples:
            break
    return seen / (time.perf_counter() - started)


def our_loop(train: Samples, val: Samples, epochs: int, batch_size: int, device: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        values = {"epochs": epochs, "batch_size": batch_size, "device": device, "learning_rate": 2e-3, "patience": epochs}
        config = TrainConfig(storage_url=tmp, run_id="bench", **values)  # type: ignore[arg-type]
        trainer = Trainer(config, PredatorLearner(), data=(train, val))
        trainer.prepare()
        speeds = [trainer._train_epoch(e)[1] for e in range(epochs)]
        return statistics.median(speeds), trainer.evaluate(trainer.val_data)["val_loss"]  # type: ignore[arg-type]


def step_flops(train: Samples, batch_size: int) -> tuple[float, float]:
    """(FLOPs per sample of one training step, tokens per sample as batched), over one epoch's
    batches drawn as our loop draws them (padding to each batch's largest flock included). The
    counter tallies matrix products and attention, forward and backward; element-wise work
    (norms, GELU, the optimizer) is left out."""
    learner = PredatorLearner()
    model = learner.build_model(learner.model_args)
    flops, tokens, rows = 0, 0, 0
    for index in learner.batches(train, batch_size, torch.Generator().manual_seed(0)):
        batch = train.rows(index)
        with FlopCounterMode(display=False) as counter:
            terms, _ = learner.losses(model, batch, contextlib.nullcontext())
            add(terms.values()).backward()
        flops += counter.get_total_flops()
        tokens += len(batch) * (3 + int(batch["count"].max()))  # CLS, context, predator, boids
        rows += len(batch)
    return flops / rows, tokens / rows


def linear_ceiling(batch_size: int, tokens: int, device: torch.device, repeats: int = 20) -> float:
    """Sample-steps/s allowed by the model's linear layers alone (forward and backward, fp32)
    on batch_size samples of `tokens` tokens: QKV, attention output and the three feed-forward
    matrices of every block but the last, and the last block's QKV (its other rows are the CLS
    token's only). Attention, norms, copies and the optimizer would only add to the time, so no
    loop on these matrix products is faster."""
    learner = PredatorLearner()
    model = learner.build_model(learner.model_args).to(device)
    *full, last = model.layers
    layers = [m for block in full for m in block.modules() if isinstance(m, nn.Linear)] + [last.qkv]
    weights = [layer.weight for layer in layers]
    inputs = [torch.randn(batch_size * tokens, w.shape[1], device=device, requires_grad=True) for w in weights]

    def step() -> None:
        torch.stack([F.linear(x, w).sum() for x, w in zip(inputs, weights, strict=True)]).sum().backward()

    times = []
    for _ in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return batch_size / statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--old-samples", type=int, default=6000, help="samples the old loop trains on (it is slow)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="256,1024,4096")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    data = make_dataset(args.episodes)
    train, val = split_by_episode(data, 0.1, seed=0)
    mean_boids = float(train["count"].float().mean())
    print(f"dataset: {len(train)} training samples, {mean_boids:.1f} boids on average; torch threads {torch.get_num_threads()}", flush=True)
    old = old_loop(train, args.old_samples)
    print(f"old loop (batch 32, DataLoader, per-sample tokens, post-norm; CPU): {old:,.0f} sample-steps/s", flush=True)
    rows = []
    device = torch.device(args.device)
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        speed, val_loss = our_loop(train, val, args.epochs, bs, args.device)
        flops, tokens = step_flops(train, bs)
        ceiling = linear_ceiling(bs, round(tokens), device)
        rows.append({"batch_size": bs, "sample_steps_per_second": speed, "ratio_to_old": speed / old, "val_loss_after": val_loss,
                     "flops_per_sample_step": flops, "tokens_per_sample": tokens, "gflops_per_second": speed * flops / 1e9,
                     "linear_layers_ceiling_sample_steps_per_second": ceiling})  # fmt: skip
        print(
            f"ours, batch {bs} ({args.device}): {speed:,.0f} sample-steps/s = {speed / old:.1f}x the old loop; "
            f"{flops / 1e6:.2f} MFLOP a sample-step ({tokens:.1f} tokens), {speed * flops / 1e9:.1f} GFLOP/s; "
            f"the linear layers alone allow {ceiling:,.0f} = {ceiling / old:.1f}x",
            flush=True,
        )
    name = "predator-trainer" if device.type == "cpu" else f"predator-trainer-{device.type}"
    machine = {"cpu_count": torch.get_num_threads(), "platform": platform.platform(), "torch": torch.__version__}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
    report = {"machine": machine, "train_samples": len(train), "mean_boids": mean_boids, "epochs": args.epochs,
              "statistic": "median over epochs", "old_loop_sample_steps_per_second": old, "ours": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| loop | batch | sample-steps/s | vs old | MFLOP a sample-step | GFLOP/s | the linear layers alone: sample-steps/s (vs old) |",
        "|---|---|---|---|---|---|---|",
        f"| old (re-created, CPU) | 32 | {old:,.0f} | 1.0x | | | |",
    ]
    lines += [
        f"| ours ({args.device}) | {r['batch_size']} | {r['sample_steps_per_second']:,.0f} | {r['ratio_to_old']:.1f}x "
        f"| {r['flops_per_sample_step'] / 1e6:.2f} | {r['gflops_per_second']:.1f} "
        f"| {r['linear_layers_ceiling_sample_steps_per_second']:,.0f} ({r['linear_layers_ceiling_sample_steps_per_second'] / old:.1f}x) |"
        for r in rows
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
