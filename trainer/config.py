"""The trainer's configuration: plain data, no environment variables (the jobs' TrainSettings
extend it and read those). Imports no torch, so the jobs can import it anywhere."""

from __future__ import annotations

from typing import Literal

from pydantic import ByteSize, Field

from common.run import RunConfig


class TrainConfig(RunConfig):
    data_run_id: str = Field("", description="Train on the shards of this run instead of RUN_ID's own (a sweep's trials do)")
    epochs: int = Field(50, ge=1, description="Maximum training epochs (default from PRESET)")
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0, description="Peak AdamW learning rate")
    batch_size: int = Field(1024, ge=1, le=1 << 20, description="Samples per optimisation step")
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay")
    validation_split: float = Field(0.1, gt=0.0, lt=0.5, description="Share of episodes held out for validation (split by episode)")
    patience: int = Field(8, ge=1, description="Epochs without a better validation loss before stopping")
    device: Literal["auto", "cuda", "mps", "cpu"] = Field("auto", description="auto picks CUDA, then Apple MPS, then CPU")
    mixed_precision: bool = Field(True, description="bf16 autocast on CUDA")
    compile: bool = Field(False, description="torch.compile the networks (CUDA)")
    memory_budget: ByteSize | Literal["auto"] = Field(
        "auto",
        description="Host memory the training data may use (8GiB, 500MB): a dataset whose shards fit 3 times over loads whole, "
        "a larger one streams; auto = half the memory limit (cgroup, else RAM); 0 always streams",
    )
    shuffle_shards: int = Field(4, ge=1, le=1024, description="Shards whose rows are shuffled together when the data streams")
    prefetch_shards: int = Field(2, ge=1, le=64, description="Shards read ahead in background threads when the data streams")
