"""The training loop: data on the device, batches drawn by index, checkpoint every epoch.

Everything a run writes goes to the store under {TASK}/runs/{RUN_ID}/train and /model.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from jobs.provenance import git_revision
from jobs.settings import ConfigError, TrainSettings
from jobs.storage import RunLayout, ShardManifest, Store
from trainer.data import UrData, load_run_data, split_by_game
from trainer.export import to_compat, to_ours
from trainer.model import UrNets

log = logging.getLogger(__name__)

ILLEGAL_LOGIT = -1e4  # finite, so soft targets of 0 times it stay 0
VALIDATION_BATCH = 16384
WARMUP_SHARE = 0.03
CHECKPOINT_VERSION = 1


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, say); the last good checkpoint is kept."""


@dataclass
class TrainResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    train_samples: int
    val_samples: int
    seconds: float
    sample_steps_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)


def pick_device(name: str) -> torch.device:
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("DEVICE='cuda': PyTorch sees no CUDA device on this machine; allowed here: auto, cpu")
    if name == "mps" and not mps_ok:
        raise ConfigError("DEVICE='mps': Apple MPS is not available on this machine; allowed here: auto, cpu")
    return torch.device(name)


def dataset_digest(manifests: list[ShardManifest]) -> str:
    """One digest over the shards' digests, in shard order."""
    joined = "\n".join(f"{m.shard_index}:{m.sha256}" for m in sorted(manifests, key=lambda m: m.shard_index))
    return hashlib.sha256(joined.encode()).hexdigest()


class Trainer:
    """Trains the Ur networks of one run. Data comes from the run's shards in the store unless
    given (`data=(train, validation)`), which notebook users and tests may do."""

    def __init__(self, settings: TrainSettings, data: tuple[UrData, UrData] | None = None, store: Store | None = None):
        self.settings = settings
        self.store = store or Store(settings.storage_url)
        self.layout = RunLayout(settings.task, settings.run_id)
        self.device = pick_device(settings.device)
        torch.manual_seed(settings.seed)
        self.nets = UrNets().to(self.device)
        self.model = torch.compile(self.nets) if settings.compile and self.device.type == "cuda" else self.nets
        self.optimizer = torch.optim.AdamW(self.nets.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
        self.batch_generator = torch.Generator().manual_seed(settings.seed + 1)
        self.epochs_done = 0
        self.best_loss = math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.finished = False
        self.history: list[dict[str, Any]] = []
        self.manifests: list[ShardManifest] = []
        self._given_data = data
        self.train_data: UrData | None = None
        self.val_data: UrData | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None

    # ---- data ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Loads and places the data and builds the schedule (once)."""
        if self.train_data is not None:
            return
        if self._given_data is not None:
            train, val = self._given_data
        else:
            everything, self.manifests = load_run_data(self.store, self.layout, self.settings.shards)
            train, val = split_by_game(everything, self.settings.validation_split, self.settings.seed)
        self.train_data, self.val_data = self._place(train), self._place(val)
        steps = self.settings.epochs * self.steps_per_epoch
        warmup = max(1, int(steps * WARMUP_SHARE))

        def lr_factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, steps - warmup))
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor)

    def _place(self, data: UrData) -> UrData:
        """On the device when it fits comfortably; else pinned host memory, copied per batch."""
        if self.device.type != "cuda":
            return data.to(self.device)
        free, _ = torch.cuda.mem_get_info(self.device)
        if data.nbytes < 0.5 * free:
            return data.to(self.device)
        log.warning("dataset (%d MB) does not fit on the GPU: streaming batches from host memory", data.nbytes >> 20)
        return data.pin_memory()

    @property
    def steps_per_epoch(self) -> int:
        assert self.train_data is not None
        return math.ceil(len(self.train_data) / self.settings.batch_size)

    # ---- one step -----------------------------------------------------------------------

    def _autocast(self) -> torch.autocast:
        enabled = self.settings.mixed_precision and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _losses(self, batch: UrData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(value MSE, policy cross-entropy, number of teacher moves matched), float32."""
        with self._autocast():
            value, logits = self.model(batch.features)
        logits = logits.float().masked_fill(~batch.legal, ILLEGAL_LOGIT)
        value_loss = F.mse_loss(value.float(), batch.value)
        temperature = self.settings.soft_policy_temperature
        if temperature > 0:
            # The mover's view: P2 maximises the P2-positive values, P1 minimises them.
            side = torch.where(batch.features[:, 46] > 0, -1.0, 1.0).unsqueeze(1)
            target = (side * batch.move_values / temperature).masked_fill(~batch.legal, -math.inf).softmax(dim=1)
            policy_loss = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
        else:
            policy_loss = F.cross_entropy(logits, batch.best)
        correct = (logits.argmax(dim=1) == batch.best).sum()
        return value_loss, policy_loss, correct

    def _batch(self, data: UrData, index: torch.Tensor) -> UrData:
        rows = data.rows(index.to(data.features.device))
        return rows if rows.features.device == self.device else rows.to(self.device, non_blocking=True)

    # ---- epochs -------------------------------------------------------------------------

    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the training data; returns (mean loss, samples per second)."""
        assert self.train_data is not None and self.scheduler is not None
        self.model.train()
        n, bs = len(self.train_data), self.settings.batch_size
        order = torch.randperm(n, generator=self.batch_generator)
        total = torch.zeros((), device=self.device)
        started = time.perf_counter()
        bar = tqdm(
            total=n,
            desc=f"epoch {epoch + 1}/{self.settings.epochs}",
            unit="sample",
            unit_scale=True,
            file=sys.stderr,
            leave=False,
            mininterval=0.5,
            disable=not sys.stderr.isatty(),
            dynamic_ncols=True,
        )
        for start in range(0, n, bs):
            batch = self._batch(self.train_data, order[start : start + bs])
            value_loss, policy_loss, _ = self._losses(batch)
            loss = value_loss + policy_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += loss.detach() * len(batch)
            bar.update(len(batch))
        bar.close()
        seconds = time.perf_counter() - started
        return float(total) / n, n / seconds

    @torch.no_grad()
    def evaluate(self, data: UrData) -> dict[str, float]:
        """Validation losses (dropout off) and how often the policy picks the teacher's move."""
        self.model.eval()
        sums = torch.zeros(3, device=self.device)
        for start in range(0, len(data), VALIDATION_BATCH):
            batch = self._batch(data, torch.arange(start, min(start + VALIDATION_BATCH, len(data))))
            value_loss, policy_loss, correct = self._losses(batch)
            sums += torch.stack([value_loss * len(batch), policy_loss * len(batch), correct.float()])
        value_loss, policy_loss, correct = (sums / len(data)).tolist()
        return {
            "val_loss": value_loss + policy_loss,
            "val_value_mse": value_loss,
            "val_policy_ce": policy_loss,
            "val_policy_accuracy": correct,
        }

    def train(self) -> TrainResult:
        """Trains until EPOCHS or early stopping, resuming from the run's checkpoint if there
        is one; ends with the best epoch's weights loaded and exported."""
        self.prepare()
        assert self.train_data is not None and self.val_data is not None
        resumed = self.load_checkpoint()
        if resumed:
            log.info("resuming after epoch %d (best %.5f at epoch %d)", self.epochs_done, self.best_loss, self.best_epoch + 1)
        started = time.perf_counter()
        steps_run = 0
        writer = _TensorBoard(self.store, self.layout)
        while not self.finished and self.epochs_done < self.settings.epochs:
            epoch = self.epochs_done
            train_loss, speed = self._train_epoch(epoch)
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"epoch {epoch + 1}: the training loss is {train_loss}; the checkpoint of epoch {epoch} is kept "
                    f"(try a lower LEARNING_RATE than {self.settings.learning_rate})"
                )
            steps_run += len(self.train_data)
            metrics = {"epoch": epoch + 1, "train_loss": train_loss, **self.evaluate(self.val_data)}
            metrics |= {"lr": self.scheduler.get_last_lr()[0], "samples_per_second": speed}  # type: ignore[union-attr]
            self.history.append(metrics)
            self._track_best(metrics)
            self.epochs_done += 1
            self.finished = self.bad_epochs >= self.settings.patience or self.epochs_done >= self.settings.epochs
            self.save_checkpoint()
            self._write_metrics()
            writer.add(metrics)
            log.info(
                "epoch %d: train %.4f  val %.4f (value %.4f, policy %.4f, acc %.3f)  %.0f samples/s",
                epoch + 1,
                train_loss,
                metrics["val_loss"],
                metrics["val_value_mse"],
                metrics["val_policy_ce"],
                metrics["val_policy_accuracy"],
                speed,
            )
        seconds = time.perf_counter() - started
        writer.close()
        if self.best_state is not None:
            self.nets.load_state_dict(self.best_state)
        self.export()
        self._plot()
        return TrainResult(
            best_epoch=self.best_epoch + 1,
            best_val_loss=self.best_loss,
            epochs_run=self.epochs_done,
            stopped_early=self.epochs_done < self.settings.epochs,
            train_samples=len(self.train_data),
            val_samples=len(self.val_data),
            seconds=seconds,
            sample_steps_per_second=steps_run / seconds if seconds > 0 else 0.0,
            history=list(self.history),
        )

    def _track_best(self, metrics: dict[str, Any]) -> None:
        if metrics["val_loss"] < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = metrics["val_loss"], self.epochs_done, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.nets.state_dict().items()}
        else:
            self.bad_epochs += 1

    # ---- checkpoints --------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        assert self.scheduler is not None
        return {
            "version": CHECKPOINT_VERSION,
            "model": self.nets.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epochs_done": self.epochs_done,
            "finished": self.finished,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "batch_rng": self.batch_generator.get_state(),
            "settings": self.settings.model_dump(mode="json"),
        }

    def save_checkpoint(self) -> None:
        """Replaces train/checkpoint.pt in one atomic write."""
        self.prepare()
        buffer = io.BytesIO()
        torch.save(self._state(), buffer)
        self.store.write_bytes(self.layout.checkpoint, buffer.getvalue())

    def load_checkpoint(self) -> bool:
        """Restores the run's checkpoint if it exists; returns whether it did."""
        self.prepare()
        if not self.store.exists(self.layout.checkpoint):
            return False
        state = torch.load(io.BytesIO(self.store.read_bytes(self.layout.checkpoint)), map_location=self.device, weights_only=False)
        if state.get("version") != CHECKPOINT_VERSION:
            raise TrainingError(
                f"{self.store.display(self.layout.checkpoint)}: checkpoint version {state.get('version')} is not {CHECKPOINT_VERSION}"
            )
        self.nets.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])  # type: ignore[union-attr]
        self.epochs_done, self.finished = state["epochs_done"], state["finished"]
        self.best_loss, self.best_epoch, self.best_state = state["best_loss"], state["best_epoch"], state["best_state"]
        self.bad_epochs, self.history = state["bad_epochs"], state["history"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.batch_generator.set_state(state["batch_rng"].cpu())
        return True

    # ---- outputs ------------------------------------------------------------------------

    def _write_metrics(self) -> None:
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in self.history)
        self.store.write_bytes(self.layout.metrics, lines.encode())

    def provenance(self) -> dict[str, Any]:
        best = self.history[self.best_epoch] if 0 <= self.best_epoch < len(self.history) else {}
        config = self.settings.model_dump(mode="json", exclude={"storage_url"})
        return {
            "run_id": self.settings.run_id,
            "git_revision": git_revision(),
            "dataset_sha256": dataset_digest(self.manifests) if self.manifests else None,
            "shards": [m.model_dump() for m in self.manifests],
            "training_config": config,
            "metrics": {"best_epoch": self.best_epoch + 1, **best},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "device": str(self.device),
        }

    def export(self) -> None:
        """Writes model/weights.json (ours) and model/compat_weights.json (the old engine's)."""
        nets = copy.deepcopy(self.nets).cpu()
        provenance = self.provenance()
        compat_metadata = {k: provenance[k] for k in ("run_id", "git_revision", "dataset_sha256", "created_at")}
        compat_metadata["layout"] = "each matrix flattened as (in, out): index i * out + j"
        self.store.write_bytes(self.layout.weights, json.dumps(to_ours(nets, provenance)).encode())
        self.store.write_bytes(self.layout.compat_weights, json.dumps(to_compat(nets, compat_metadata)).encode())

    def _plot(self) -> None:
        if not self.history:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [m["epoch"] for m in self.history]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for ax, keys, title in [
            (axes[0], ["train_loss", "val_loss"], "total loss"),
            (axes[1], ["val_value_mse"], "value MSE (validation)"),
            (axes[2], ["val_policy_ce", "val_policy_accuracy"], "policy (validation)"),
        ]:
            for key in keys:
                ax.plot(epochs, [m[key] for m in self.history], label=key, marker=".")
            ax.axvline(self.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
        fig.suptitle(f"run {self.settings.run_id}")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        self.store.write_bytes(f"{self.layout.train}/loss_curves.png", buffer.getvalue())

    @torch.no_grad()
    def predict(self, features: Any, legal: Any = None) -> dict[str, torch.Tensor]:
        """Value (P2-positive, [-1, 1]) and move probabilities for [N, 150] features; illegal
        moves get probability 0 when a [N, 7] legal mask is given."""
        x = torch.as_tensor(features, dtype=torch.float32, device=self.device).reshape(-1, 150)
        self.nets.eval()
        value, logits = self.nets(x)
        if legal is not None:
            mask = torch.as_tensor(legal, device=self.device).bool().reshape(-1, 7)
            logits = logits.masked_fill(~mask, -math.inf)
        return {"value": value.cpu(), "policy": logits.softmax(dim=1).cpu()}


class _TensorBoard:
    """Event files written to a local folder and copied to train/tensorboard/ every epoch."""

    def __init__(self, store: Store, layout: RunLayout) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = tempfile.TemporaryDirectory(prefix="ludus-tb-")
        self.writer = SummaryWriter(self.folder.name)
        self.store, self.prefix = store, f"{layout.train}/tensorboard"

    def add(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            if key != "epoch":
                self.writer.add_scalar(key, value, metrics["epoch"])
        self.writer.flush()
        for path in Path(self.folder.name).iterdir():
            self.store.put_file(path, f"{self.prefix}/{path.name}")

    def close(self) -> None:
        self.writer.close()
        self.folder.cleanup()
