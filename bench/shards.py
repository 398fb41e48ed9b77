"""A generated shard for the benchmarks: the real generator, run once into a temporary folder."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from trainer.data import parse_shard
from trainer.learner import Learner
from trainer.samples import Samples

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "rust_gen" / "target" / "release" / "rust_gen"


def generated_shard(learner: Learner, *arguments: str) -> Samples:
    """Shard 0 of `rust_gen TASK generate ARGUMENTS --out TMP`, parsed by the task's learner."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(GENERATOR), learner.task, "generate", *arguments, "--out", tmp]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return parse_shard(learner, (Path(tmp) / "shard-00000.safetensors").read_bytes(), 0, "bench")
