"""The training loop, the same for every task: data on the device with batches drawn by index,
epochs, early stopping, a checkpoint every epoch with exact resume, metrics, TensorBoard, plots
and provenance. The task's parts come from its Learner (trainer/learner.py).

Everything a run writes goes to the store under {TASK}/runs/{RUN_ID}/train and /model.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import logging
import math
import operator
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from tqdm import tqdm

from common.errors import ConfigError
from common.processes import temp_prefix
from common.provenance import git_revision
from common.storage import RunLayout, ShardManifest, Store
from trainer.config import TrainConfig
from trainer.data import DatasetError, load_run_data, read_manifests, shard_indices, split_by_episode
from trainer.distributed import World, all_sum, gathered, while_every_rank_has_one
from trainer.learner import Learner, encode_export
from trainer.samples import Samples
from trainer.stream import ShardStream, epoch_seed, fits_in_memory

log = logging.getLogger(__name__)

VALIDATION_BATCH = 16384
WARMUP_SHARE = 0.03
CHECKPOINT_VERSION = 2


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


@dataclass
class TrainState:
    """Where training stands, beyond the model, optimizer and RNG states: saved and loaded whole."""

    epochs_done: int = 0
    finished: bool = False
    best_loss: float = math.inf
    best_epoch: int = -1  # 0-based; -1 before the first epoch
    best_model: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # every epoch of every round
    round: int = 0  # a round trains on more shards than the last, starting from its best model

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


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


def shard_digests(manifests: list[ShardManifest]) -> list[str]:
    return [f"{m.shard_index}:{m.sha256}" for m in sorted(manifests, key=lambda m: m.shard_index)]


def add(terms: Any) -> Any:
    """The sum of loss terms in their order (the training loss)."""
    return functools.reduce(operator.add, terms)


class Trainer:
    """Trains one run's model. Data comes from the run's shards in the store unless given
    (`data=(train, validation)`), which notebook users and tests may do: loaded whole when it
    fits MEMORY_BUDGET, else streamed (trainer/stream.py). With a `World` of several ranks
    (torchrun), each rank trains on its share of every batch and rank 0 writes."""

    def __init__(
        self,
        config: TrainConfig,
        learner: Learner,
        data: tuple[Samples, Samples] | None = None,
        store: Store | None = None,
        world: World | None = None,
    ):
        self.config, self.learner = config, learner
        self.world = world or World()
        self.store = store or Store(config.storage_url)
        self.layout = RunLayout(learner.task, config.run_id, config.data_run_id)
        self.device = self.world.device(pick_device(config.device))
        torch.manual_seed(config.seed)
        self.net = learner.build_model(learner.model_args).to(self.device)
        model: nn.Module = self.net
        if self.world.distributed:
            # Same seed, same initial weights on every rank; DDP also broadcasts rank 0's.
            model = nn.parallel.DistributedDataParallel(
                self.net,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                gradient_as_bucket_view=True,  # gradients live in the buckets: one copy fewer a step
            )
        # torch.compile's wrapper runs the same module (its type says only "a callable").
        self.model = cast(nn.Module, torch.compile(model)) if config.compile and self.device.type == "cuda" else model
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.batch_generator = torch.Generator().manual_seed(config.seed + 1)
        self.state = TrainState()
        self.manifests: list[ShardManifest] = []
        self._given_data = data
        self.train_data: Samples | None = None
        self.val_data: Samples | None = None
        self.stream: ShardStream | None = None  # instead of the two tables when the data streams
        self.train_rows = self.val_rows = 0  # while streaming, estimates until an epoch counts them
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state.history

    # ---- data ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Loads and places the data, or sets up its streaming, and builds the schedule (once)."""
        if self.scheduler is not None:
            return
        if self._given_data is not None:
            self._hold(*self._given_data)
        else:
            self._open_run_data()
        steps = self.config.epochs * self.steps_per_epoch
        warmup = max(1, int(steps * WARMUP_SHARE))

        def lr_factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, steps - warmup))
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor)

    def _open_run_data(self) -> None:
        """The run's shards: loaded whole if they fit MEMORY_BUDGET, else streamed."""
        manifests = read_manifests(self.store, self.layout, shard_indices(self.store, self.layout, self.config.shards))
        budget = None if self.config.memory_budget == "auto" else int(self.config.memory_budget)
        if fits_in_memory(manifests, budget):
            everything, self.manifests = load_run_data(self.store, self.layout, self.learner, self.config.shards)
            self._hold(*split_by_episode(everything, self.config.validation_split, self.config.seed))
            return
        if len(manifests) < self.world.size:
            raise DatasetError(
                f"the data streams (its {sum(m.bytes for m in manifests) >> 20} MB exceed MEMORY_BUDGET), and {len(manifests)} shard(s) "
                f"cannot be shared by {self.world.size} ranks: generate at least as many shards as ranks, or raise MEMORY_BUDGET"
            )
        self.manifests = manifests
        c = self.config
        self.stream = ShardStream(self.store, self.layout, self.learner, manifests, c.validation_split, c.seed, c.shuffle_shards, c.prefetch_shards)
        self.val_rows = round(self.stream.rows * c.validation_split)
        self.train_rows = self.stream.rows - self.val_rows
        log.info("streaming the data (it exceeds MEMORY_BUDGET): %s", self.stream.describe())

    def _hold(self, train: Samples, val: Samples) -> None:
        self.train_data, self.val_data = self._place(train), self._place(val)
        self.train_rows, self.val_rows = len(train), len(val)

    def _place(self, data: Samples) -> Samples:
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
        """Optimisation steps per epoch (estimated when the data streams)."""
        return math.ceil(self.train_rows / self.config.batch_size)

    # ---- one step -----------------------------------------------------------------------

    def _autocast(self) -> torch.autocast:
        enabled = self.config.mixed_precision and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _batch(self, data: Samples, index: torch.Tensor) -> Samples:
        return self._on_device(data.rows(index.to(data.device)))

    def _on_device(self, rows: Samples) -> Samples:
        if rows.device == self.device:
            return rows
        return rows.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else rows.to(self.device)

    def _training_batches(self, epoch: int) -> Iterator[Samples]:
        """This rank's augmented batches of one epoch, on the device."""
        if self.stream is None:
            assert self.train_data is not None
            for index in self.learner.batches(self.train_data, self.config.batch_size, self.batch_generator):
                if len(index) < self.world.size:
                    continue  # a last batch too small to give every rank a row (at most size - 1 rows)
                if not self.learner.augments:  # each rank gathers only its own rows
                    yield self._batch(self.train_data, self.world.share(index))
                    continue
                # Augmented whole, then shared: every rank draws the same numbers, so the generator
                # stays in step across ranks and the rows are those of a single process.
                batch = self.learner.augment(self._batch(self.train_data, index), self.batch_generator)
                yield batch.rows(self.world.share(torch.arange(len(batch), device=batch.device))) if self.world.distributed else batch
            return
        # Each rank reads its own shards and draws its own batches of its share of BATCH_SIZE.
        generator = torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch, self.world.rank))
        share = max(1, self.config.batch_size // self.world.size)
        batches = self.stream.train_batches(epoch, self.world, share, generator)
        for batch in while_every_rank_has_one(batches, self.world, self.device):
            yield self.learner.augment(self._on_device(batch), generator)

    # ---- epochs -------------------------------------------------------------------------

    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the training data; returns (mean loss, samples per second)."""
        assert self.scheduler is not None
        self.model.train()
        total = torch.zeros((), device=self.device)
        rows = 0
        started = time.perf_counter()
        bar = tqdm(
            total=self.train_rows,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="sample",
            unit_scale=True,
            file=sys.stderr,
            leave=False,
            mininterval=0.5,
            disable=not sys.stderr.isatty() or not self.world.writer,
            dynamic_ncols=True,
        )
        for batch in self._training_batches(len(self.state.history)):
            terms, _ = self.learner.losses(self.model, batch, self._autocast())
            loss = add(terms.values())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += loss.detach() * len(batch)
            rows += len(batch)
            bar.update(len(batch) * self.world.size)
        bar.close()
        seconds = time.perf_counter() - started
        loss_sum, n = all_sum(torch.stack([total.double(), torch.tensor(float(rows), device=self.device, dtype=torch.float64)]), self.world).tolist()
        if self.stream is not None:
            self.train_rows = int(n)  # counted now
        return loss_sum / n, n / seconds

    @torch.no_grad()
    def evaluate(self, data: Samples) -> dict[str, float]:
        """Validation metrics (dropout off): `val_loss`, each loss term and each count's share."""
        return self._metrics([self._loss_sums([data])])

    def _validate(self) -> dict[str, float]:
        """This epoch's validation metrics, the same on every rank (so all agree on the best epoch
        and on early stopping). Loaded data: every rank validates on all of it, with no
        collective. Streamed data: each rank sums over its share of the shards, and the ranks'
        sums are added up."""
        if self.stream is None:
            assert self.val_data is not None
            return self.evaluate(self.val_data)
        with torch.no_grad():
            sums = gathered(self._loss_sums(self.stream.validation_parts(self.world)), self.world)
        metrics = self._metrics(sums)
        self.val_rows = sum(rows for rows, _, _ in sums)
        return metrics

    def _loss_sums(self, parts: Iterable[Samples]) -> tuple[int, dict[str, float], int]:
        """(rows, sum of each loss term and count over the rows, how many entries are loss terms)."""
        model = self.net if self.world.distributed else self.model
        model.eval()
        sums: torch.Tensor | None = None
        names: list[str] = []
        terms_count = rows = 0
        for data in parts:
            if len(data) == 0:
                continue  # a shard with no validating episode (a batch of none would average nothing)
            for index in self.learner.batches(data, VALIDATION_BATCH, None):
                batch = self._batch(data, index)
                terms, counts = self.learner.losses(model, batch, self._autocast())
                values = torch.stack([*(t * len(batch) for t in terms.values()), *(c.float() for c in counts.values())])
                sums = values if sums is None else sums + values
                names, terms_count = [*terms, *counts], len(terms)
            rows += len(data)
        return rows, dict(zip(names, sums.tolist() if sums is not None else [], strict=True)), terms_count

    @staticmethod
    def _metrics(sums: list[tuple[int, dict[str, float], int]]) -> dict[str, float]:
        """`val_loss` and `val_<name>` means from the sums of one or more ranks."""
        rows = sum(r for r, _, _ in sums)
        named = [(by_name, terms) for r, by_name, terms in sums if r]
        if not named:
            raise DatasetError("no validation sample: no episode drew below VALIDATION_SPLIT (generate more games)")
        names, terms_count = list(named[0][0]), named[0][1]
        means = [sum(by_name[name] for by_name, _ in named) / rows for name in names]
        return {"val_loss": add(means[:terms_count]), **{f"val_{name}": value for name, value in zip(names, means, strict=True)}}

    def train(self) -> TrainResult:
        """Trains until EPOCHS or early stopping, resuming from the run's checkpoint if there
        is one; ends with the best epoch's weights loaded and exported."""
        self.prepare()
        ckpt = self._read_checkpoint()  # read once: it may be large and far away
        if ckpt is not None and self._is_later_round(ckpt):
            self.state = TrainState(**ckpt["state"])
            log.info("a later round (%d, on %d shards) is trained already: nothing to do", self.state.round, len(ckpt["shards"]))
            return self._result(0.0, 0)
        if self._restore(ckpt) and self.state.epochs_done:
            s = self.state
            log.info("resuming after epoch %d (best %.5f at epoch %d)", s.epochs_done, s.best_loss, s.best_epoch + 1)
            if self.world.writer:
                self._write_metrics()  # a kill between the checkpoint and the metrics left them short
        started = time.perf_counter()
        steps_run = 0
        writer = _TensorBoard(self.store, self.layout) if self.world.writer else None
        while not self.state.finished and self.state.epochs_done < self.config.epochs:
            metrics = self._run_epoch()
            steps_run += self.train_rows
            if writer is None:
                continue  # rank 0 alone writes and reports
            self.save_checkpoint()
            self._write_metrics()
            writer.add(metrics)
            log.info(
                "epoch %d: train %.4f  val %.4f (%s)  %.0f samples/s",
                metrics["epoch"],
                metrics["train_loss"],
                metrics["val_loss"],
                ", ".join(f"{k[4:]} {v:.4f}" for k, v in metrics.items() if k.startswith("val_") and k != "val_loss"),
                metrics["samples_per_second"],
            )
        seconds = time.perf_counter() - started
        if self.state.best_model is not None:
            self.net.load_state_dict(self.state.best_model)
        if writer is not None:
            writer.close()
            self.export()
            self._plot()
        return self._result(seconds, steps_run)

    def _result(self, seconds: float, steps_run: int) -> TrainResult:
        return TrainResult(
            best_epoch=self.state.best_epoch + 1,
            best_val_loss=self.state.best_loss,
            epochs_run=self.state.epochs_done,
            stopped_early=self.state.epochs_done < self.config.epochs,
            train_samples=self.train_rows,
            val_samples=self.val_rows,
            seconds=seconds,
            sample_steps_per_second=steps_run / seconds if seconds > 0 else 0.0,
            history=list(self.history),
        )

    def _run_epoch(self) -> dict[str, Any]:
        """Trains one epoch, validates, and updates the state; returns the epoch's metrics."""
        assert self.scheduler is not None
        epoch = self.state.epochs_done
        train_loss, speed = self._train_epoch(epoch)
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"epoch {epoch + 1}: the training loss is {train_loss}; the checkpoint of epoch {epoch} is kept "
                f"(try a lower LEARNING_RATE than {self.config.learning_rate})"
            )
        metrics: dict[str, Any] = {"epoch": len(self.state.history) + 1, "round": self.state.round, "train_loss": train_loss}
        metrics |= self._validate()
        metrics |= {"lr": self.scheduler.get_last_lr()[0], "samples_per_second": speed}
        self.state.history.append(metrics)
        self._track_best(metrics)
        self.state.epochs_done += 1
        self.state.finished = self.state.bad_epochs >= self.config.patience or self.state.epochs_done >= self.config.epochs
        if not self.state.finished and self._asked_to_stop():
            log.info("epoch %d: %s asks training to stop; it stops here", epoch + 1, self.store.display(self.layout.stop))
            self.state.finished = True
        return metrics

    def _asked_to_stop(self) -> bool:
        """Whether the run's stop marker exists (a sweep prunes a trial so): rank 0 looks, and
        every rank learns its answer, so that all stop after the same epoch."""
        asked = torch.tensor(float(self.world.writer and self.store.exists(self.layout.stop)), device=self.device)
        return bool(all_sum(asked, self.world).item())

    def _track_best(self, metrics: dict[str, Any]) -> None:
        s = self.state
        if metrics["val_loss"] < s.best_loss:
            s.best_loss, s.best_epoch, s.bad_epochs = metrics["val_loss"], len(s.history) - 1, 0
            s.best_model = {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}
        else:
            s.bad_epochs += 1

    # ---- checkpoints --------------------------------------------------------------------

    def _checkpoint(self) -> dict[str, Any]:
        assert self.scheduler is not None
        return {
            "version": CHECKPOINT_VERSION,
            "task": self.learner.task,
            "run_id": self.config.run_id,
            "dataset_sha256": dataset_digest(self.manifests) if self.manifests else None,
            "shards": shard_digests(self.manifests),
            "model_args": self.learner.model_args,
            "state": self.state.as_dict(),
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "batch_rng": self.batch_generator.get_state(),
            "config": self.config.model_dump(mode="json", exclude={"storage_url"}),  # it may hold a password
        }

    def save_checkpoint(self) -> None:
        """Replaces train/checkpoint.pt in one atomic write."""
        self.prepare()
        buffer = io.BytesIO()
        torch.save(self._checkpoint(), buffer)
        self.store.write_bytes(self.layout.checkpoint, buffer.getvalue())

    def load_checkpoint(self) -> bool:
        """Restores the run's checkpoint if it exists; returns whether it did. Only tensors and
        plain data are unpickled (`weights_only`): a checkpoint never runs code."""
        self.prepare()
        return self._restore(self._read_checkpoint())

    def _restore(self, ckpt: dict[str, Any] | None) -> bool:
        """Adopts a checkpoint read by `_read_checkpoint` (None: there is none)."""
        if ckpt is None:
            return False
        where = self.store.display(self.layout.checkpoint)
        if ckpt.get("task") != self.learner.task or ckpt.get("model_args") != self.learner.model_args:
            raise TrainingError(f"{where}: made for task {ckpt.get('task')!r} with model {ckpt.get('model_args')}, not this run's")
        digest = dataset_digest(self.manifests) if self.manifests else None
        if self._is_earlier_round(ckpt):
            self._start_next_round(ckpt)
            return True
        if ckpt.get("run_id") != self.config.run_id or ckpt.get("dataset_sha256") != digest:
            raise TrainingError(
                f"{where}: belongs to run {ckpt.get('run_id')!r} trained on dataset {str(ckpt.get('dataset_sha256'))[:12]}..., "
                f"not to run {self.config.run_id!r} on {str(digest)[:12]}...; delete it to train this run from the start"
            )
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])  # type: ignore[union-attr]
        self.state = TrainState(**ckpt["state"])
        # A rerun may raise EPOCHS or PATIENCE: then a finished run trains on.
        self.state.finished = self.state.bad_epochs >= self.config.patience or self.state.epochs_done >= self.config.epochs
        torch.set_rng_state(ckpt["torch_rng"].cpu())
        if ckpt["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["cuda_rng"]])
        self.batch_generator.set_state(ckpt["batch_rng"].cpu())
        return True

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """The run's checkpoint, if there is one, refused if it is not one of ours."""
        if not self.store.exists(self.layout.checkpoint):
            return None
        where = self.store.display(self.layout.checkpoint)
        try:
            ckpt = torch.load(io.BytesIO(self.store.read_bytes(self.layout.checkpoint)), map_location=self.device, weights_only=True)
        except Exception as e:  # pickle, zip and torch errors differ; all mean "not one of ours"
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TrainingError(f"{where}: not a checkpoint this trainer can load ({reason}); delete it to start the run's training over") from e
        if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
            version = ckpt.get("version") if isinstance(ckpt, dict) else None
            raise TrainingError(f"{where}: checkpoint version {version} is not {CHECKPOINT_VERSION}")
        return ckpt

    def _is_later_round(self, ckpt: dict[str, Any]) -> bool:
        """The checkpoint of this run on more shards than ours, ours first: a later round is
        trained already (a rerun of a finished multi-round pipeline retrains nothing)."""
        done, ours = ckpt.get("shards") or [], shard_digests(self.manifests)
        return ckpt.get("run_id") == self.config.run_id and 0 < len(ours) < len(done) and done[: len(ours)] == ours

    def _is_earlier_round(self, ckpt: dict[str, Any]) -> bool:
        """The finished checkpoint of this run on fewer shards, all of them still ours."""
        done, ours = ckpt.get("shards") or [], shard_digests(self.manifests)
        finished = bool(ckpt["state"].get("finished"))
        return ckpt.get("run_id") == self.config.run_id and finished and 0 < len(done) < len(ours) and ours[: len(done)] == done

    def _start_next_round(self, ckpt: dict[str, Any]) -> None:
        """The next round starts from the last round's best model with a fresh optimizer and
        schedule; its epochs add to the history."""
        old = TrainState(**ckpt["state"])
        self.net.load_state_dict(old.best_model if old.best_model is not None else ckpt["model"])
        self.state = TrainState(history=old.history, round=old.round + 1)
        shards = (len(ckpt["shards"]), len(self.manifests))
        log.info("round %d: %d shards (round %d had %d); from its best model", old.round + 1, shards[1], old.round, shards[0])

    # ---- outputs ------------------------------------------------------------------------

    def _write_metrics(self) -> None:
        lines = "".join(json.dumps(m, sort_keys=True) + "\n" for m in self.history)
        self.store.write_bytes(self.layout.metrics, lines.encode())

    def provenance(self) -> dict[str, Any]:
        best = self.history[self.state.best_epoch] if 0 <= self.state.best_epoch < len(self.history) else {}
        return {
            "run_id": self.config.run_id,
            "git_revision": git_revision(),
            "dataset_sha256": dataset_digest(self.manifests) if self.manifests else None,
            "shards": [m.model_dump() for m in self.manifests],
            "training_config": self.config.model_dump(mode="json", exclude={"storage_url"}),
            "model_args": self.learner.model_args,
            "metrics": {"best_epoch": self.state.best_epoch + 1, **best},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "device": str(self.device),
        }

    def export(self) -> None:
        """Writes the learner's model files under model/ (ours first, then compatible ones)."""
        net = copy.deepcopy(self.net).cpu().eval()
        for name, obj in self.learner.exports(net, self.provenance()).items():
            self.store.write_bytes(self.layout.model_file(name), encode_export(obj))

    def _plot(self) -> None:
        """train/loss_curves.png: the total loss, then one panel per validation metric."""
        if not self.history:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        epochs = [m["epoch"] for m in self.history]
        panels = [(["train_loss", "val_loss"], "total loss")]
        panels += [([key], f"{key[4:]} (validation)") for key in self.history[0] if key.startswith("val_") and key != "val_loss"]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.8), squeeze=False)
        for ax, (keys, title) in zip(axes[0], panels, strict=True):
            for key in keys:
                ax.plot(epochs, [m[key] for m in self.history], label=key, marker=".")
            ax.axvline(self.state.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8)
        fig.suptitle(f"run {self.config.run_id}")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        self.store.write_bytes(f"{self.layout.train}/loss_curves.png", buffer.getvalue())

    @torch.no_grad()
    def predict(self, *inputs: Any) -> dict[str, torch.Tensor]:
        """The model's outputs for raw inputs (the learner says which)."""
        self.net.eval()
        return self.learner.predict(self.net, self.device, *inputs)


class _TensorBoard:
    """Event files written to a local folder and copied to train/tensorboard/ every epoch."""

    def __init__(self, store: Store, layout: RunLayout) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = tempfile.TemporaryDirectory(prefix=temp_prefix("tb"))
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
