"""One-off trial (2026-12-07): does bf16 autocast (this CPU has AMX) or torch.compile speed up
the predator's training step on CPU? Training steps of the default 48/4/3/96 network on random
batches of 1,024, one thread, eager fp32 against each, interleaved.

    .venv/bin/python experiments/predator/cpu_speed_trial.py
"""

from __future__ import annotations

import time

import torch

from trainer.tasks.predator.model import PredatorNet

BATCH = 1024


def batch(boids: int) -> tuple[torch.Tensor, ...]:
    count = torch.randint(max(1, boids - 4), boids + 1, (BATCH,))
    return torch.randn(BATCH, 2), torch.randn(BATCH, 4), torch.randn(BATCH, boids, 4), count, torch.rand(BATCH, 2)


def steps_per_second(model: torch.nn.Module, optimizer: torch.optim.Optimizer, bf16: bool, steps: int = 10) -> float:
    start = time.perf_counter()
    for i in range(steps):
        context, predator, boids, count, target = batch(20 + i)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            action = model(context, predator, boids, count).float()
        loss = (action - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * BATCH / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = PredatorNet()
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    compiled = torch.compile(net, dynamic=True)
    start = time.perf_counter()
    steps_per_second(compiled, optimizer, False, steps=3)
    print(f"torch.compile warm-up: {time.perf_counter() - start:.1f} s")
    for _ in range(2):
        for name, model, bf16 in (("eager fp32", net, False), ("eager bf16 autocast", net, True), ("compiled fp32", compiled, False)):
            print(f"{name}: {steps_per_second(model, optimizer, bf16):.0f} samples/s (1 thread)")


if __name__ == "__main__":
    main()
