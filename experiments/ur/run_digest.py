"""sha256 of what a run learned from and produced, without provenance or timings: each shard
tensor, the numbers of each weight file, and the metrics (speeds left out). Two runs with the
same settings print the same lines if and only if they generated and trained the same thing.

    .venv/bin/python experiments/ur/run_digest.py store/ur/runs/RUN_ID
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from safetensors.numpy import load_file


def digest(obj: object) -> str:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def numbers(obj: object) -> object:
    """The weight file without its provenance and metadata."""
    if isinstance(obj, dict):
        return {k: numbers(v) for k, v in obj.items() if k not in ("provenance", "metadata")}
    return obj


def main(run: Path) -> None:
    for shard in sorted((run / "data").glob("*.safetensors")):
        tensors = load_file(str(shard))
        for name in sorted(tensors):
            print(f"{shard.name}:{name}", digest(tensors[name].tobytes()))
    for weights in sorted((run / "model").glob("*.json")):
        print(f"model/{weights.name}", digest(numbers(json.loads(weights.read_text()))))
    epochs = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    print("train/metrics.jsonl", digest([{k: v for k, v in e.items() if k != "samples_per_second"} for e in epochs]))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
