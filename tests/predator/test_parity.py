"""The predator simulation in a second language: a plain-Python transcription of
docs/predator.md (bench/predator_python_bench.py) replays episodes traced by the real generator
and must match them bit for bit, step by step."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("predator_python", ROOT / "bench" / "predator_python_bench.py")
assert spec and spec.loader
python_sim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(python_sim)


@pytest.mark.parametrize("seed", [0, 5, 9])
def test_python_replays_the_generators_trace_bit_for_bit(generator: Path, seed: int) -> None:
    cmd = [str(generator), "predator", "trace", "--player", "pursuit", "--seed", str(seed), "--steps", "400"]
    trace = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    state = json.loads(json.dumps(trace["initial"]))
    assert trace["steps"], "the episode ran"
    for k, expected in enumerate(trace["steps"]):
        ax, ay = python_sim.encode_and_pursue(state)
        assert [ax, ay] == expected["action"], f"step {k}: action"
        assert python_sim.step(state, ax, ay) == expected["caught"], f"step {k}: caught"
        assert state["boids"] == expected["boids"] and state["predator"] == expected["predator"], f"step {k}: positions"
