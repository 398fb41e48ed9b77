"""ludus trainer: one generic training loop (`trainer.train`) and one learner per task
(`trainer.tasks.<task>`). It reads no environment variable and never imports `jobs`.

Notebook use::

    from trainer import Trainer, TrainConfig
    from trainer.tasks.ur.learner import UrLearner
    t = Trainer(TrainConfig(storage_url="./store", run_id="my-run", shards=2, epochs=5), UrLearner())
    result = t.train()
    t.predict(features, legal)  # {"value": [N], "policy": [N, 7]}

Importing `trainer` (or `trainer.config`) does not import torch: the generator image has none.
"""

from __future__ import annotations

from typing import Any

from trainer.config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingError"]


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "TrainResult", "TrainingError"):
        from trainer import train

        return getattr(train, name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
