"""Training trials of the predator outside the pipeline, as docs/results/predator.md ("Strength and speed")
reports them: train run RUN_ID's data (already in STORAGE_URL) with the train job's settings
from the environment, optionally starting from a weights file and with the boid projection's
position columns learning faster.

    TASK=predator STORAGE_URL=... RUN_ID=... GAMES=1200 SHARDS=2 EPOCHS=2 LEARNING_RATE=5e-4 \\
        MODE_KAPPA=4 python -m experiments.predator.trial --start-from weights.json
    ... EPOCHS=6 python -m experiments.predator.trial --position-gain 8

The weights go to the run's model/ as the train job's do; paired matches then compare them."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from torch.nn.utils import parametrize

from common.storage import Store
from jobs.settings import TrainSettings, load_job
from jobs.tasks import get_task
from trainer import Trainer


class ColumnGain(torch.nn.Module):
    """A weight as `gain` times a trained one, per input column: AdamW's steps are about the
    same size whatever the gradient's scale, so those columns move `gain` times as fast. The
    weight seen (and exported) is unchanged at registration."""

    def __init__(self, gain: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("gain", gain)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.gain

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / self.gain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start-from", type=Path, help="our weights.json to start from (default: fresh weights)")
    parser.add_argument("--position-gain", type=float, default=1.0, help="speed-up of the boid position columns (1: none)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    settings = load_job("train")
    assert isinstance(settings, TrainSettings)
    learner = get_task(settings.task).load_learner(settings)
    config = settings.model_copy(update={"shards": settings.data_shards()})
    trainer = Trainer(config, learner, store=Store(settings.storage_url))
    if args.start_from:
        start = learner.model_from_export("weights.json", json.loads(args.start_from.read_text()), str(args.start_from))
        trainer.net.load_state_dict(start.state_dict())
    if args.position_gain != 1.0:
        gain = torch.tensor([args.position_gain, args.position_gain, 1.0, 1.0])
        parametrize.register_parametrization(trainer.net.boid_projection, "weight", ColumnGain(gain))
        trainer.optimizer = torch.optim.AdamW(trainer.net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    trainer.prepare()
    assert trainer.val_data is not None
    print("before:", json.dumps(trainer.evaluate(trainer.val_data)), flush=True)
    result = trainer.train()
    print(json.dumps({"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss, "seconds": result.seconds, "history": result.history}))


if __name__ == "__main__":
    main()
