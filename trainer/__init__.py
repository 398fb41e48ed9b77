"""ludus trainer: datasets from shards, the Ur networks, the training loop, exports.

Notebook use::

    from jobs.settings import TrainSettings
    from trainer import Trainer
    t = Trainer(TrainSettings(storage_url="./store", run_id="my-run", shards=2, epochs=5))
    result = t.train()
    t.predict(features)  # {"value": [N], "policy": [N, 7]}
"""

from trainer.train import Trainer, TrainingError, TrainResult

__all__ = ["TrainResult", "Trainer", "TrainingError"]
