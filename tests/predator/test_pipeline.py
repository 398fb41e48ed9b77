"""The predator through the whole pipeline with the real binary and trainer: on a real S3 server,
with ROUNDS (later rounds partly driven by the latest model, every step still labelled by the
teacher), and the settings that only some tasks and runners allow."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

from common.storage import RunLayout, Store, committed_shard_indices, read_committed_shard
from tests.conftest import make_bucket, run_job

TINY = {
    "TASK": "predator",
    "GAMES": 6,
    "SHARDS": 2,
    "EPOCHS": 2,
    "STEPS": 120,
    "MAX_BOIDS": 10,
    "TEACHER": "pursuit",
    "BATCH_SIZE": 256,
    "EVAL_GAMES": 6,
    "EVAL_STEPS": 300,
    "EVAL_MAX_BOIDS": 10,
    "DEVICE": "cpu",
}


def test_the_predator_pipeline_on_a_real_s3_server(generator: Path, s3_env: dict[str, str]) -> None:
    make_bucket("predator")
    result = run_job("pipeline", STORAGE_URL="s3://predator/runs", RUN_ID="s3-predator", **TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    store, layout = Store("s3://predator/runs"), RunLayout("predator", "s3-predator")
    for name in ("weights.json", "browser_weights.json", "predator_model.js"):
        assert store.exists(layout.model_file(name)), name
    assert store.read_bytes(layout.model_file("predator_model.js")).startswith(b"window.TRANSFORMER_PARAMS = {")
    report = store.read_json(f"{layout.eval}/report.json")
    assert {r["protocol"] for r in report["results"]} == {"default", "legacy"}
    assert {r["opponent"] for r in report["results"]} == {"new model", "pursuit", "still"}
    assert store.read_json(layout.champion)["run_id"] == "s3-predator"


def pursuit(context: torch.Tensor, boids: torch.Tensor) -> list[float]:
    """The closest-pursuit teacher on an encoded observation (docs/predator.md, section 7)."""
    del context
    if len(boids) == 0:
        return [0.0, 0.0]
    rel = boids[:, :2].double()
    dist = rel.pow(2).sum(dim=1).sqrt()
    k = int(torch.argmin(dist))
    if dist[k] < 0.001:
        return [0.0, 0.0]
    return (rel[k] / dist[k]).tolist()


def test_rounds_add_student_driven_shards_labelled_by_the_teacher_and_train_on(generator: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    result = run_job("pipeline", STORAGE_URL=url, RUN_ID="rounds", ROUNDS=2, STUDENT_SHARE=1.0, **TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    store, layout = Store(url), RunLayout("predator", "rounds")
    assert committed_shard_indices(store, layout) == [0, 1, 2, 3], "SHARDS per round"
    for index in (2, 3):
        manifest, data = read_committed_shard(store, layout, index)
        assert manifest.settings["round"] == 1 and len(manifest.settings["student_sha256"]) == 64
        t = load_safetensors(data)
        for row in range(0, len(t["count"]), 7):  # the label is the teacher's action for the state
            want = pursuit(t["context"][row], t["boids"][row, : int(t["count"][row])])
            assert torch.allclose(t["target"][row].double(), torch.tensor(want, dtype=torch.float64), atol=1e-5), row
    first, _ = read_committed_shard(store, layout, 0)
    assert first.settings["round"] == 0 and "student_sha256" not in first.settings
    metrics = [json.loads(line) for line in store.read_bytes(layout.metrics).splitlines()]
    assert [(m["round"], m["epoch"]) for m in metrics] == [(0, 1), (0, 2), (1, 3), (1, 4)]
    weights = store.read_json(layout.weights)
    assert len(weights["provenance"]["shards"]) == 4, "the last round trained on every shard"
    # The student of round 1 was the model of round 0, not the final one.
    final = hashlib.sha256(store.read_bytes(layout.weights)).hexdigest()
    assert manifest.settings["student_sha256"] != final


def test_a_rerun_of_a_finished_multi_round_run_does_nothing_new(generator: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    settings = {**TINY, "STORAGE_URL": url, "RUN_ID": "again", "ROUNDS": 2}
    assert run_job("pipeline", **settings).returncode == 0
    store, layout = Store(url), RunLayout("predator", "again")
    metrics = store.read_bytes(layout.metrics)
    rerun = run_job("pipeline", **settings)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert store.read_bytes(layout.metrics) == metrics, "no epoch trained twice"
    # EVAL_OPPONENTS picks the players beside the new model (the champion is this run: not played).
    chosen = run_job("evaluate", **settings, EVAL_OPPONENTS="still, planner:horizon=20:replan=2")
    assert chosen.returncode == 0, chosen.stderr[-2000:]
    report = store.read_json(f"{layout.eval}/report.json")
    assert {r["opponent"] for r in report["results"]} == {"new model", "still", "planner:horizon=20:replan=2"}


def test_rounds_are_refused_where_they_cannot_run(tmp_path: Path) -> None:
    ur = run_job("pipeline", STORAGE_URL=tmp_path, TASK="ur", ROUNDS=2)
    assert ur.returncode != 0 and "ROUNDS=2" in ur.stderr and "no student" in ur.stderr, ur.stderr
    k8s = run_job("pipeline", STORAGE_URL="s3://b/p", TASK="predator", ROUNDS=2, RUNNER="k8s")
    assert k8s.returncode != 0 and "ROUNDS=2" in k8s.stderr, k8s.stderr
    for bad, says in (("pursuit,emm:3", "'emm:3' is not an opponent"), ("planner:horizon=0", "horizon=0"), (" , ", "at least one opponent")):
        refused = run_job("evaluate", STORAGE_URL=tmp_path, TASK="predator", RUN_ID="x", EVAL_OPPONENTS=bad)
        assert refused.returncode == 2 and "EVAL_OPPONENTS" in refused.stderr and says in refused.stderr, refused.stderr
    train = run_job("train", STORAGE_URL=tmp_path, TASK="predator", ROUNDS=2, ROUND=2)
    assert train.returncode != 0 and "ROUND=2 is not below ROUNDS=2" in train.stderr, train.stderr
