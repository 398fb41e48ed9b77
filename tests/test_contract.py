"""The contract every registered task passes: real shards from the real generator through the
generate job, thread-independent bytes, the learner's schema, one CPU epoch with exact resume,
exports that read back, an evaluation with intervals, and a complete storage layout.

A new task joins by its registry line and one entry in TINY (settings that make each stage take
seconds); the first test fails until it has one. The generator checks run for every task; the
rest for tasks whose learner and evaluator exist.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from common.storage import RunLayout, Store, committed_shard_indices, read_committed_shard, read_metrics
from jobs.tasks import REGISTRY, TaskSpec
from tests.conftest import run_job
from trainer import TrainConfig, Trainer
from trainer.data import DatasetError, load_run_data, parse_shard, split_by_episode
from trainer.distributed import World
from trainer.learner import decode_export
from trainer.samples import EPISODE_KEY, Samples

# Per task: a run small enough for seconds per stage.
TINY: dict[str, dict[str, object]] = {
    "ur": {"GAMES": 12, "DEPTH": 1, "EVAL_GAMES": 20, "EVAL_OPPONENTS": "random,emm:1"},
    "predator": {"GAMES": 6, "STEPS": 80, "MAX_BOIDS": 8, "TEACHER": "pursuit", "EVAL_GAMES": 6, "EVAL_STEPS": 300, "EVAL_MAX_BOIDS": 8},
}
COMMON = {"SHARDS": 2, "EPOCHS": 2, "BATCH_SIZE": 256, "DEVICE": "cpu", "SEED": 3}
TASKS = sorted(REGISTRY)
TRAINABLE = sorted(name for name, spec in REGISTRY.items() if spec.runs("pipeline"))


def test_every_task_has_tiny_settings() -> None:
    assert set(TINY) == set(REGISTRY), "add the new task's TINY settings to tests/test_contract.py"


@pytest.mark.parametrize("task", TASKS)
def test_the_generate_job_commits_two_shards_from_the_real_generator(generator: Path, tmp_path: Path, task: str) -> None:
    store = Store(str(tmp_path / "store"))
    layout = RunLayout(task, "shards")
    for index in (0, 1):
        settings = {**COMMON, **TINY[task], "SHARD_INDEX": index}
        result = run_job("generate", STORAGE_URL=store.root, TASK=task, RUN_ID="shards", **settings)
        assert result.returncode == 0, result.stderr[-2000:]
    assert committed_shard_indices(store, layout) == [0, 1]
    games = 0
    for index in (0, 1):
        manifest, data = read_committed_shard(store, layout, index)  # verifies the digest
        tensors = load_safetensors(data)
        rows = {t.shape[0] for t in tensors.values()}
        assert rows == {manifest.rows} and manifest.rows > 0, "every tensor has one row per sample"
        games += manifest.games
    assert games == TINY[task]["GAMES"]


@pytest.fixture(scope="module", params=TRAINABLE)
def run(request: pytest.FixtureRequest, generator: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TaskSpec, Store, RunLayout]:
    """One complete tiny pipeline run of the task (generate job per shard, train, evaluate)."""
    spec = REGISTRY[request.param]
    store_path = tmp_path_factory.mktemp(f"contract-{spec.name}") / "store"
    result = run_job("pipeline", STORAGE_URL=store_path, TASK=spec.name, RUN_ID="contract", **COMMON, **TINY[spec.name])
    assert result.returncode == 0, result.stderr[-3000:]
    return spec, Store(str(store_path)), RunLayout(spec.name, "contract")


def learner_of(spec: TaskSpec) -> Any:
    return spec.load_learner(spec.settings["train"]())


def test_the_storage_layout_is_complete(run: tuple[TaskSpec, Store, RunLayout]) -> None:
    spec, store, layout = run
    keys = [layout.run_json, f"{layout.run}/summary.json", layout.checkpoint, layout.metrics, f"{layout.train}/loss_curves.png"]
    keys += [layout.model_file(name) for name in spec.artifacts]
    keys += [f"{layout.eval}/{name}" for name in ("report.json", "report.md", "scores.png")]
    keys += [layout.champion]
    missing = [store.display(key) for key in keys if not store.exists(key)]
    assert not missing, f"missing {missing}"
    assert store.list(f"{layout.train}/tensorboard"), "TensorBoard event files"
    assert committed_shard_indices(store, layout) == [0, 1]
    for index in (0, 1):
        manifest, _ = read_committed_shard(store, layout, index)  # verifies the digest
        assert manifest.rows > 0 and manifest.games > 0
    assert len(store.read_bytes(layout.metrics).splitlines()) == COMMON["EPOCHS"]
    summary = store.read_json(f"{layout.run}/summary.json")
    assert summary["task"] == spec.name and all(metric.key in summary for metric in spec.headline)


def test_the_learner_accepts_the_shards_and_refuses_corrupt_ones(run: tuple[TaskSpec, Store, RunLayout]) -> None:
    spec, store, layout = run
    learner = learner_of(spec)
    data, manifests = load_run_data(store, layout, learner, 2)
    assert len(data) == sum(m.rows for m in manifests)
    _, raw = read_committed_shard(store, layout, 0)
    tensors = load_safetensors(raw)
    first = next(iter(learner.shard_schema))
    without = {name: t for name, t in tensors.items() if name != first}
    with pytest.raises(DatasetError, match=rf"shard 0 \(x\): tensor {first!r} is missing"):
        parse_shard(learner, save_safetensors(without), 0, "x")
    retyped = {**tensors, first: tensors[first].to(torch.float64)}
    with pytest.raises(DatasetError, match=rf"tensor {first!r} is torch.float64"):
        parse_shard(learner, save_safetensors(retyped), 0, "x")
    with pytest.raises(DatasetError, match="not a safetensors file"):
        parse_shard(learner, raw[:100], 0, "x")


@pytest.mark.parametrize("task", TASKS)
def test_the_same_seed_gives_the_same_shard_with_1_and_2_threads(generator: Path, tmp_path: Path, task: str) -> None:
    digests = []
    for threads in (1, 2):
        store = tmp_path / f"threads-{threads}"
        settings = {**COMMON, **TINY[task], "THREADS": threads, "SHARD_INDEX": 1}
        result = run_job("generate", STORAGE_URL=store, TASK=task, RUN_ID="threads", **settings)
        assert result.returncode == 0, result.stderr[-2000:]
        data = Store(str(store)).read_bytes(RunLayout(task, "threads").shard_data(1))
        digests.append(hashlib.sha256(data).hexdigest())
    assert digests[0] == digests[1]


def config(store: str, **overrides: object) -> TrainConfig:
    values: dict[str, Any] = {"storage_url": store, "run_id": "contract", "shards": 2, "batch_size": 64, "device": "cpu", "seed": 3}
    return TrainConfig(**{**values, **overrides})


@pytest.mark.parametrize("budget", ["auto", 0], ids=["loaded", "streamed"])
def test_one_cpu_epoch_trains_and_resume_equals_an_uninterrupted_run(
    run: tuple[TaskSpec, Store, RunLayout], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: str | int
) -> None:
    """For loaded and for streamed data (MEMORY_BUDGET=0 streams even these tiny shards)."""
    spec, store, layout = run
    stores = []
    for name in ("straight", "killed"):
        shutil.copytree(Path(store.root) / layout.run / "data", tmp_path / name / layout.run / "data")
        stores.append(str(tmp_path / name))
    straight = Trainer(config(stores[0], epochs=2, patience=5, memory_budget=budget), learner_of(spec))
    assert straight.train().epochs_run == 2
    assert (straight.stream is not None) == (budget == 0)

    save = Trainer.save_checkpoint

    def save_then_die(self: Trainer) -> None:
        save(self)
        raise KeyboardInterrupt  # the process dies right after its first checkpoint

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(stores[1], epochs=2, patience=5, memory_budget=budget), learner_of(spec)).train()
    monkeypatch.undo()
    resumed = Trainer(config(stores[1], epochs=2, patience=5, memory_budget=budget), learner_of(spec))
    resumed.train()
    assert [m["epoch"] for m in resumed.history] == [1, 2]
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [m["val_loss"] for m in resumed.history] == [m["val_loss"] for m in straight.history]


def row_fingerprints(data: Samples) -> list[tuple[int, float]]:
    """Each row as (episode key, sum of its numbers): a multiset that tells rows apart."""
    numbers = torch.cat([t.reshape(len(data), -1).double() for name, t in data.columns.items() if name != EPISODE_KEY], dim=1)
    return sorted(zip(data[EPISODE_KEY].tolist(), numbers.sum(dim=1).tolist(), strict=True))


def test_streamed_data_trains_on_every_training_row_once_and_validates_like_loaded_data(run: tuple[TaskSpec, Store, RunLayout]) -> None:
    """The same episodes train and validate whether the data is loaded or streamed: an epoch's
    streamed batches hold each training row once, and the validation metrics of the same
    (untrained) model agree within float rounding (1e-6 relative; the sums run in another order)."""
    spec, store, _ = run
    loaded = Trainer(config(store.root), learner_of(spec))
    streamed = Trainer(config(store.root, memory_budget=0, shuffle_shards=1), learner_of(spec))
    loaded.prepare()
    streamed.prepare()
    assert loaded.stream is None and loaded.train_data is not None and streamed.stream is not None
    batches = list(streamed.stream.train_batches(0, World(), 64, torch.Generator().manual_seed(0)))
    assert all(len(b) == 64 for b in batches[:-1]), "only the epoch's last batch is short"
    assert row_fingerprints(Samples.concat(batches)) == row_fingerprints(loaded.train_data)
    once_more = list(streamed.stream.train_batches(1, World(), 64, torch.Generator().manual_seed(1)))
    assert [b[EPISODE_KEY].tolist() for b in once_more] != [b[EPISODE_KEY].tolist() for b in batches], "a new order each epoch"
    for (name, a), b in zip(loaded.net.state_dict().items(), streamed.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    expected, got = loaded._validate(), streamed._validate()
    assert streamed.val_rows == loaded.val_rows > 0
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_a_streamed_epoch_reads_each_shard_and_no_manifest_again(run: tuple[TaskSpec, Store, RunLayout], monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream holds every manifest from the start: reading an epoch fetches each shard's data
    once and checks it against the manifest it holds, with no second read of the manifest."""
    spec, store, layout = run
    streamed = Trainer(config(store.root, memory_budget=0), learner_of(spec))
    streamed.prepare()
    assert streamed.stream is not None
    reads: list[str] = []
    for method in ("read_json", "read_bytes", "exists"):
        original = getattr(streamed.stream.store, method)
        monkeypatch.setattr(streamed.stream.store, method, lambda key, _f=original: (reads.append(key), _f(key))[1])
    list(streamed.stream.train_batches(0, World(), 64, torch.Generator().manual_seed(0)))
    assert sorted(reads) == sorted(layout.shard_data(m.shard_index) for m in streamed.stream.manifests), reads


def test_exports_exist_and_read_back_as_the_trained_model(run: tuple[TaskSpec, Store, RunLayout]) -> None:
    spec, store, layout = run
    learner = learner_of(spec)
    data, _ = load_run_data(store, layout, learner, 2)
    _, val = split_by_episode(data, 0.1, seed=3)
    trained = Trainer(config(store.root, epochs=COMMON["EPOCHS"]), learner)
    assert trained.load_checkpoint()
    trained.net.load_state_dict(trained.state.best_model)  # what the exports hold
    trained.net.eval()
    with torch.no_grad():
        want, _ = learner.losses(trained.net, val, torch.autocast("cpu", enabled=False))
        for name in spec.artifacts:
            obj = decode_export(name, store.read_bytes(layout.model_file(name)))
            model = learner.model_from_export(name, obj, name).eval()
            got, _ = learner.losses(model, val, torch.autocast("cpu", enabled=False))
            for term in want:
                assert abs(float(got[term]) - float(want[term])) < 1e-5, (name, term)


def test_the_evaluation_gives_scores_with_95_percent_intervals(run: tuple[TaskSpec, Store, RunLayout]) -> None:
    _, store, layout = run
    report = store.read_json(f"{layout.eval}/report.json")
    assert report["results"], "at least one opponent"
    widths = []
    for result in report["results"]:
        score, (low, high) = result[report["score"]], result[report["interval"]]
        assert low <= score <= high, result["label"]
        widths.append(high - low)
    assert max(widths) > 0, "some result's interval has a width"
    assert report["promoted"] and report["reason"] == "no champion yet"
    assert store.read_json(layout.champion)["run_id"] == "contract"


def test_the_generator_image_needs_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, jobs.__main__, jobs.generate, jobs.settings; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0, "the generate job imported torch"


def copy_of(store: Store, folder: Path) -> Store:
    """A copy of a run's store, for tests that change it (the module's run stays as it is)."""
    shutil.copytree(store.root, folder)
    return Store(str(folder))


def test_a_rerun_generates_a_damaged_shard_again_and_finishes(run: tuple[TaskSpec, Store, RunLayout], tmp_path: Path) -> None:
    """One flipped byte in a committed shard (same size, so only the digest shows it): the rerun
    of the pipeline with the same RUN_ID generates that shard again and ends complete."""
    spec, store, layout = run
    copy = copy_of(store, tmp_path / "store")
    good = copy.read_bytes(layout.shard_data(0))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    copy.write_bytes(layout.shard_data(0), bytes(flipped))
    result = run_job("pipeline", STORAGE_URL=copy.root, TASK=spec.name, RUN_ID="contract", **COMMON, **TINY[spec.name])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "damaged shards (0)" in result.stdout, result.stdout[-2000:]
    _, data = read_committed_shard(copy, layout, 0)  # verifies the digest
    assert data == good, "the same seed gives the same shard again"


@pytest.mark.parametrize("job", ["generate", "train", "evaluate"])
def test_a_stage_run_alone_with_another_seed_refuses_and_writes_nothing(run: tuple[TaskSpec, Store, RunLayout], tmp_path: Path, job: str) -> None:
    spec, store, layout = run
    copy = copy_of(store, tmp_path / "store")
    before = {key: copy.read_bytes(key) for key in (layout.weights, layout.metrics, layout.shard_manifest(0), f"{layout.eval}/report.json")}
    settings = {**COMMON, **TINY[spec.name], "SEED": 5, "SHARD_INDEX": 0}
    result = run_job(job, STORAGE_URL=copy.root, TASK=spec.name, RUN_ID="contract", **settings)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "SEED=3" in result.stderr and "SEED=5" in result.stderr and f"the {job} job refuses them" in result.stderr, result.stderr
    assert {key: copy.read_bytes(key) for key in before} == before, "nothing was rewritten"


def fresh_training(store: Store, layout: RunLayout) -> Store:
    """The run's shards without its training (checkpoint, metrics, model)."""
    for prefix in (layout.train, layout.model):
        shutil.rmtree(Path(store.path(prefix)), ignore_errors=True)
    return store


def val_losses(store: Store, layout: RunLayout) -> list[float]:
    return [m["val_loss"] for m in read_metrics(store, layout)]


def test_two_ranks_under_torchrun_train_like_one(run: tuple[TaskSpec, Store, RunLayout], tmp_path: Path) -> None:
    """TRAIN_PROCESSES=2: the train job starts itself under torchrun (gloo on CPU); BATCH_SIZE is
    the global batch, so the validation losses follow one process's within 1%."""
    spec, store, layout = run
    settings = {**COMMON, **TINY[spec.name], "EPOCHS": 3}
    losses = {}
    for ranks in (1, 2):
        copy = fresh_training(copy_of(store, tmp_path / f"ranks{ranks}"), layout)
        result = run_job("train", STORAGE_URL=copy.root, TASK=spec.name, RUN_ID="contract", TRAIN_PROCESSES=ranks, **settings)
        assert result.returncode == 0, result.stderr[-3000:]
        losses[ranks] = val_losses(copy, layout)
        assert copy.exists(layout.weights) and copy.exists(layout.checkpoint)
    assert len(losses[1]) == len(losses[2]) == 3
    for one, two in zip(losses[1], losses[2], strict=True):
        assert abs(two - one) <= 0.01 * abs(one), losses


def test_two_ranks_stream_disjoint_shards_and_step_together(run: tuple[TaskSpec, Store, RunLayout], tmp_path: Path) -> None:
    """TRAIN_PROCESSES=2 with MEMORY_BUDGET=0: each rank streams its own shard; the ranks take
    the same number of steps (the first to run out ends the epoch for both), rank 0 writes, and
    the validation sums of both ranks' shards give the metrics that one process computes for
    the same weights (within float rounding). With so few shards the ranks' shares differ in
    size, so their losses are not compared with one rank's: the longer share's extra rows wait."""
    spec, store, layout = run
    copy = fresh_training(copy_of(store, tmp_path / "ranks2"), layout)
    settings = {**COMMON, **TINY[spec.name], "EPOCHS": 3, "MEMORY_BUDGET": 0}
    result = run_job("train", STORAGE_URL=copy.root, TASK=spec.name, RUN_ID="contract", TRAIN_PROCESSES=2, **settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "streaming the data" in result.stderr
    history = read_metrics(copy, layout)
    assert len(history) == 3 and copy.exists(layout.weights)
    alone = Trainer(config(copy.root, memory_budget=0), learner_of(spec))
    alone.prepare()
    checkpoint = torch.load(io.BytesIO(copy.read_bytes(layout.checkpoint)), weights_only=True)
    alone.net.load_state_dict(checkpoint["model"])  # the weights after epoch 3
    for key, value in alone._validate().items():
        assert history[-1][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
