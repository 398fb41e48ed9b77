"""The trainer on real shards from the real generator (tiny), its exports and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from common.errors import ConfigError
from common.storage import RunLayout, Store
from trainer import TrainConfig, Trainer, TrainingError
from trainer.data import DatasetError, load_run_data, split_by_episode
from trainer.tasks.ur.export import (
    WeightsError,
    convert_main,
    engine_forward,
    from_compat,
    read_weights,
    to_compat,
    to_ours,
)
from trainer.tasks.ur.learner import UrLearner
from trainer.tasks.ur.model import UrNets


def settings(store: str, run_id: str, **overrides: object) -> TrainConfig:
    values: dict[str, object] = {"storage_url": store, "run_id": run_id, "shards": 2, "epochs": 2, "batch_size": 256, "device": "cpu"}
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


def trainer(config: TrainConfig, **kwargs: object) -> Trainer:
    return Trainer(config, UrLearner(), **kwargs)  # type: ignore[arg-type]


def ur_data(store: str, run_id: str):  # type: ignore[no-untyped-def]
    return load_run_data(Store(store), RunLayout("ur", run_id), UrLearner(), 2)


@pytest.fixture
def run_copy(tiny_run: tuple[str, str], tmp_path: Path) -> str:
    """A private copy of the tiny run's store, so tests can add checkpoints to it."""
    import shutil

    target = tmp_path / "store"
    shutil.copytree(tiny_run[0], target)
    return str(target)


def test_network_sizes_match_the_spec() -> None:
    nets = UrNets()
    assert sum(p.numel() for p in nets.value.parameters()) == 81_921
    assert sum(p.numel() for p in nets.policy.parameters()) == 82_119


def test_split_is_by_game(tiny_run: tuple[str, str]) -> None:
    data, manifests = ur_data(*tiny_run)
    assert len(data) == sum(m.rows for m in manifests)
    train, val = split_by_episode(data, 0.25, seed=0)
    assert len(train) + len(val) == len(data)
    assert not set(train["episode_key"].tolist()) & set(val["episode_key"].tolist())
    assert 1 <= len(set(val["episode_key"].tolist())) < 16
    # A run that gains data (a later round) keeps every episode on its side.
    first_half = data.rows(torch.nonzero(data["episode_key"] >> 32 == 0).squeeze(1))
    train_part, val_part = split_by_episode(first_half, 0.25, seed=0)
    assert set(val_part["episode_key"].tolist()) <= set(val["episode_key"].tolist())
    assert set(train_part["episode_key"].tolist()) <= set(train["episode_key"].tolist())


def test_training_writes_every_artifact(run_copy: str) -> None:
    result = trainer(settings(run_copy, "tiny")).train()
    layout = RunLayout("ur", "tiny")
    store = Store(run_copy)
    for key in [layout.checkpoint, layout.metrics, layout.weights, layout.model_file("compat_weights.json"), f"{layout.train}/loss_curves.png"]:
        assert store.exists(key), key
    assert store.list(f"{layout.train}/tensorboard"), "TensorBoard event files"
    lines = store.read_bytes(layout.metrics).decode().splitlines()
    assert len(lines) == 2 and json.loads(lines[-1])["epoch"] == 2
    assert result.epochs_run == 2 and math.isfinite(result.best_val_loss)
    ours = store.read_json(layout.weights)
    assert ours["provenance"]["run_id"] == "tiny" and len(ours["provenance"]["dataset_sha256"]) == 64
    assert ours["provenance"]["model_args"] == {"hidden_sizes": [256, 128, 64, 32], "dropout": 0.0}


def test_compat_export_reads_correctly_the_engine_way_and_not_untransposed() -> None:
    torch.manual_seed(3)
    nets = UrNets().eval()
    x = torch.rand(3, 150) * 2 - 1
    with torch.no_grad():
        value, logits = nets(x)
    compat = to_compat(nets, {})
    for row in range(3):
        got_value = engine_forward(compat["value_weights"], 1, x[row].tolist())
        got_policy = engine_forward(compat["policy_weights"], 7, x[row].tolist())
        assert abs(got_value[0] - float(value[row])) < 1e-5
        assert max(abs(a - b) for a, b in zip(got_policy, logits[row].tolist(), strict=True)) < 1e-5
    # The old exporter's mistake: the same numbers without the transpose are read scrambled.
    untransposed: list[float] = []
    for layer in [m for m in nets.policy if isinstance(m, torch.nn.Linear)]:
        untransposed += layer.weight.reshape(-1).tolist() + layer.bias.tolist()
    wrong = engine_forward(untransposed, 7, x[0].tolist())
    assert max(abs(a - b) for a, b in zip(wrong, logits[0].tolist(), strict=True)) > 1e-3


def test_our_file_and_the_compat_file_round_trip(tmp_path: Path) -> None:
    nets = UrNets().eval()
    x = torch.rand(5, 150)
    (tmp_path / "ours.json").write_text(json.dumps(to_ours(nets, {"run_id": "x"})))
    (tmp_path / "compat.json").write_text(json.dumps(to_compat(nets, {})))
    with torch.no_grad():
        want = nets(x)
        for name in ["ours.json", "compat.json"]:
            got = read_weights(tmp_path / name).eval()(x)
            assert torch.allclose(got[0], want[0]) and torch.allclose(got[1], want[1]), name


def test_converter_fixes_old_exporter_files(tmp_path: Path) -> None:
    nets = UrNets().eval()
    old = {"network_config": to_compat(nets, {})["network_config"], "metadata": {"epochs": 100}}
    for name in ["value", "policy"]:
        flat: list[float] = []
        for layer in [m for m in getattr(nets, name) if isinstance(m, torch.nn.Linear)]:
            flat += layer.weight.reshape(-1).tolist() + layer.bias.tolist()  # (out, in): the old bug
        old[f"{name}_weights"] = flat
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert convert_main([str(tmp_path / "old.json"), "--out", str(tmp_path / "fixed")]) == 0
    compat = json.loads((tmp_path / "fixed" / "compat_weights.json").read_text())
    x = torch.rand(150)
    with torch.no_grad():
        want = nets(x.unsqueeze(0))[1][0].tolist()
    got = engine_forward(compat["policy_weights"], 7, x.tolist())
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5
    assert read_weights(tmp_path / "fixed" / "weights.json") is not None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda o: o["value_weights"].pop(), r"bad\.json: field 'value_weights' has 81920 numbers, expected 81921"),
        (lambda o: o["policy_weights"].__setitem__(5, float("nan")), r"field 'policy_weights' holds a non-finite number at index 5"),
        (lambda o: o["value_weights"].__setitem__(9, 1e300), r"field 'value_weights' holds a non-finite number at index 9"),
        (lambda o: o.pop("policy_weights"), r"field 'policy_weights' is missing"),
        (lambda o: o["network_config"].__setitem__("input_size", 149), r"field 'network_config.input_size' is 149, expected 150"),
    ],
)
def test_bad_weights_files_are_rejected_naming_file_and_field(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    obj = to_compat(UrNets(), {})
    damage(obj)
    (tmp_path / "bad.json").write_text(json.dumps(obj))
    with pytest.raises(WeightsError, match=message):
        read_weights(tmp_path / "bad.json")


def test_early_stopping_restores_the_best_epoch(tiny_run: tuple[str, str], tmp_path: Path) -> None:
    data, _ = ur_data(*tiny_run)
    train, val = split_by_episode(data, 0.25, seed=0)
    # A learning rate this high makes validation worse after the first epochs: stop early.
    t = trainer(settings(str(tmp_path), "early", epochs=30, patience=2, learning_rate=0.5), data=(train, val))
    result = t.train()
    losses = [m["val_loss"] for m in result.history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert result.stopped_early and result.epochs_run == best + 1 + 2
    assert result.best_epoch == best + 1
    assert t.evaluate(val)["val_loss"] == pytest.approx(losses[best], rel=1e-5)


def test_non_finite_loss_stops_naming_the_epoch_and_keeps_no_bad_checkpoint(tiny_run: tuple[str, str], tmp_path: Path) -> None:
    data, _ = ur_data(*tiny_run)
    train, val = split_by_episode(data, 0.25, seed=0)
    poisoned = train.replace(value=torch.full_like(train["value"], float("nan")))
    t = trainer(settings(str(tmp_path), "nan"), data=(poisoned, val))
    with pytest.raises(TrainingError, match=r"epoch 1: the training loss is nan"):
        t.train()
    assert not Store(str(tmp_path)).exists(RunLayout("ur", "nan").checkpoint)


def test_corrupt_or_missing_shards_are_refused(run_copy: str) -> None:
    store, layout = Store(run_copy), RunLayout("ur", "tiny")
    with pytest.raises(Exception, match=r"shard 2: .*shard-00002\.json does not exist"):
        trainer(settings(run_copy, "tiny", shards=3)).train()
    data = bytearray(store.read_bytes(layout.shard_data(1)))
    data[-1] ^= 0xFF
    store.write_bytes(layout.shard_data(1), bytes(data))
    with pytest.raises(Exception, match=r"shard 1: .* is corrupt"):
        trainer(settings(run_copy, "tiny")).train()
    with pytest.raises(DatasetError, match="holds no committed shard"):
        load_run_data(store, RunLayout("ur", "empty"), UrLearner())


def test_cuda_on_a_machine_without_one_is_a_config_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path needs one without")
    with pytest.raises(ConfigError, match=r"DEVICE='cuda': PyTorch sees no CUDA device"):
        trainer(settings(str(tmp_path), "x", device="cuda"))


def test_predict_masks_illegal_moves(tiny_run: tuple[str, str], tmp_path: Path) -> None:
    t = trainer(settings(str(tmp_path), "p"))
    legal = torch.tensor([[1, 0, 1, 0, 0, 0, 0]])
    out = t.predict(torch.zeros(1, 150), legal)
    assert out["policy"][0, 1] == 0 and out["policy"][0].sum() == pytest.approx(1.0)
    assert -1 <= float(out["value"][0]) <= 1
    assert from_compat(to_compat(t.net, {}), "x") is not None


class _RunsACommand:
    """What an attacker with write access to the bucket would plant: unpickling it runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_a_planted_checkpoint_runs_no_code_and_is_refused_naming_the_file(run_copy: str, tmp_path: Path) -> None:
    import io

    marker = tmp_path / "code-ran"
    buffer = io.BytesIO()
    torch.save({"version": 2, "state": _RunsACommand(marker)}, buffer)
    Store(run_copy).write_bytes(RunLayout("ur", "tiny").checkpoint, buffer.getvalue())
    with pytest.raises(TrainingError, match=r"train/checkpoint\.pt: not a checkpoint this trainer can load"):
        trainer(settings(run_copy, "tiny")).train()
    assert not marker.exists(), "loading the checkpoint ran the planted code"


def test_a_manifest_whose_counts_disagree_with_its_data_is_refused(run_copy: str) -> None:
    store, layout = Store(run_copy), RunLayout("ur", "tiny")
    manifest = store.read_json(layout.shard_manifest(1))
    store.write_json(layout.shard_manifest(1), {**manifest, "rows": manifest["rows"] + 5})
    with pytest.raises(DatasetError, match=r"shard 1: .*shard-00001\.json says rows=\d+, games=8, but the data holds \d+ rows of 8 episodes"):
        load_run_data(store, layout, UrLearner(), 2)


def test_non_finite_move_values_are_named_when_the_shard_is_read(run_copy: str) -> None:
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors

    from trainer.data import parse_shard

    data = Store(run_copy).read_bytes(RunLayout("ur", "tiny").shard_data(0))
    tensors = load_tensors(data)
    tensors["move_values"][3, 2] = float("nan")
    with pytest.raises(DatasetError, match=r"shard 0 \(s\): non-finite numbers in 'move_values'"):
        parse_shard(UrLearner(), save_tensors(tensors), 0, "s")


def test_an_empty_checkpoint_is_refused_in_one_line(run_copy: str) -> None:
    Store(run_copy).write_bytes(RunLayout("ur", "tiny").checkpoint, b"")
    with pytest.raises(TrainingError, match=r"checkpoint\.pt: not a checkpoint this trainer can load"):
        trainer(settings(run_copy, "tiny")).train()


def test_a_checkpoint_from_another_run_is_refused(run_copy: str, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    trainer(settings(run_copy, "tiny", epochs=1)).train()
    checkpoint = RunLayout("ur", "tiny").checkpoint
    copy = RunLayout("ur", "copy")
    for index in (0, 1):  # the same data under another run id
        Store(str(other)).write_bytes(copy.shard_data(index), Store(run_copy).read_bytes(RunLayout("ur", "tiny").shard_data(index)))
        Store(str(other)).write_bytes(copy.shard_manifest(index), Store(run_copy).read_bytes(RunLayout("ur", "tiny").shard_manifest(index)))
    Store(str(other)).write_bytes(copy.checkpoint, Store(run_copy).read_bytes(checkpoint))
    with pytest.raises(TrainingError, match=r"belongs to run 'tiny' trained on dataset .*, not to run 'copy'"):
        trainer(settings(str(other), "copy", epochs=2)).train()


def test_metrics_lost_to_a_kill_after_the_checkpoint_are_written_on_resume(run_copy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = RunLayout("ur", "tiny")

    def die(self: Trainer) -> None:
        raise KeyboardInterrupt  # killed after the checkpoint, before the metrics

    monkeypatch.setattr(Trainer, "_write_metrics", die)
    with pytest.raises(KeyboardInterrupt):
        trainer(settings(run_copy, "tiny", epochs=1)).train()
    monkeypatch.undo()
    assert not Store(run_copy).exists(layout.metrics)
    trainer(settings(run_copy, "tiny", epochs=1)).train()  # finished already: no epoch runs
    assert len(Store(run_copy).read_bytes(layout.metrics).splitlines()) == 1


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_illegal_logits_are_pushed_down_only_by_the_illegal_mass_term(weight: float) -> None:
    """The old engine takes a softmax over all 7 outputs; the masked cross-entropy alone leaves
    the illegal logits where they are, the extra term pushes them down."""
    from contextlib import nullcontext

    from trainer.samples import Samples
    from trainer.tasks.ur.config import UrTrainOptions

    torch.manual_seed(0)
    n = 512
    legal = torch.rand(n, 7) < 0.4
    legal[torch.arange(n), torch.randint(0, 7, (n,))] = True
    best = torch.where(legal, torch.rand(n, 7), -1.0).argmax(dim=1)
    batch = Samples({"features": torch.randn(n, 150), "value": torch.zeros(n), "best": best, "legal": legal, "move_values": torch.zeros(n, 7)})
    learner, model = UrLearner(UrTrainOptions(illegal_mass_weight=weight)), UrNets()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(150):
        terms, _ = learner.losses(model, batch, nullcontext())
        optimizer.zero_grad()
        sum(terms.values()).backward()  # type: ignore[union-attr]
        optimizer.step()
    model.eval()
    with torch.no_grad():
        _, counts = learner.losses(model, batch, nullcontext())
    illegal = float(counts["illegal_probability"]) / n
    accuracy = float(counts["policy_accuracy"]) / n
    assert accuracy > 0.9, accuracy  # the masked policy fits the teacher either way
    assert (illegal < 0.05) if weight else (illegal > 0.2), illegal
