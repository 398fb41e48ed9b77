"""Evaluation and promotion with the real match engine, and the Rust reading of our exports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from common.storage import RunLayout, Store
from tests.conftest import GENERATOR, run_job
from trainer import TrainConfig, Trainer
from trainer.tasks.ur.export import read_weights
from trainer.tasks.ur.learner import UrLearner


@pytest.fixture(scope="session")
def trained_run(tiny_run: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny run, trained for 2 epochs: its store holds real exports."""
    store = tmp_path_factory.mktemp("trained") / "store"
    shutil.copytree(tiny_run[0], store)
    config = TrainConfig(storage_url=str(store), run_id="tiny", shards=2, epochs=2, batch_size=256, device="cpu")
    Trainer(config, UrLearner()).train()
    return str(store)


def model_files(store: str, run_id: str = "tiny") -> tuple[Path, Path]:
    folder = Path(store) / "ur" / "runs" / run_id / "model"
    return folder / "weights.json", folder / "compat_weights.json"


def match(a: str, b: str, games: int = 60) -> dict:  # type: ignore[type-arg]
    cmd = [str(GENERATOR), "ur", "match", "--a", a, "--b", b, "--games", str(games), "--seed", "3"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_rust_reads_both_exports_exactly_as_pytorch_computes(trained_run: str) -> None:
    ours, compat = model_files(trained_run)
    nets = read_weights(ours).eval()
    x = torch.rand(4, 150) * 2 - 1
    with torch.no_grad():
        value, logits = nets(x)
    for path in (ours, compat):
        lines = "\n".join(json.dumps(row) for row in x.tolist())
        cmd = [str(GENERATOR), "ur", "predict", "--weights", str(path)]
        out = subprocess.run(cmd, input=lines, capture_output=True, text=True, check=True)
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        for k, row in enumerate(rows):
            assert abs(row["value"] - float(value[k])) < 1e-5, path.name
            assert max(abs(a - b) for a, b in zip(row["policy_logits"], logits[k].tolist(), strict=True)) < 1e-5, path.name


def test_the_compatible_export_plays_identically_to_our_file(trained_run: str) -> None:
    ours, compat = model_files(trained_run)
    for kind in ("value", "policy"):
        a, b = match(f"{kind}:{ours}", "emm:1"), match(f"{kind}:{compat}", "emm:1")
        keys = ["a_wins", "b_wins", "unfinished", "mean_plies"]
        assert [a[k] for k in keys] == [b[k] for k in keys], kind


def evaluate(store: str, run_id: str, **settings: object) -> subprocess.CompletedProcess[str]:
    values: dict[str, object] = {"EVAL_GAMES": 60, "EVAL_OPPONENTS": "random,emm:1", **settings}
    return run_job("evaluate", STORAGE_URL=store, RUN_ID=run_id, **values)


def test_promotion_happens_and_does_not_happen_in_constructed_cases(trained_run: str, tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    store = Store(str(store_path))
    # 1. No champion: the first evaluated model is promoted.
    result = evaluate(str(store_path), "tiny")
    assert result.returncode == 0, result.stderr
    first = RunLayout("ur", "tiny")
    for key in ["report.json", "report.md", "scores.png"]:
        assert store.exists(f"{first.eval}/{key}")
    assert store.read_json(first.champion)["run_id"] == "tiny"
    assert store.read_json(f"{first.eval}/report.json")["reason"] == "no champion yet"
    # 2. A second run whose model is the same network: about 50% against the champion, so the
    #    lower bound is below 0.5 and the champion stays.
    twin = RunLayout("ur", "twin")
    store.write_bytes(twin.weights, store.read_bytes(first.weights))
    result = evaluate(str(store_path), "twin", EVAL_GAMES=200)
    assert result.returncode == 0, result.stderr
    report = store.read_json(f"{twin.eval}/report.json")
    against = next(r for r in report["results"] if r["opponent"] == "champion")
    assert against["a_win_rate_ci95"][0] < 0.5 < against["a_win_rate_ci95"][1]
    assert report["promoted"] is False
    assert store.read_json(first.champion)["run_id"] == "tiny"
    assert "Not promoted" in store.read_bytes(f"{twin.eval}/report.md").decode()
    # 3. The same evidence with a threshold of 0.2 promotes it.
    result = evaluate(str(store_path), "twin", EVAL_GAMES=200, PROMOTION_THRESHOLD=0.2)
    assert result.returncode == 0, result.stderr
    champion = store.read_json(first.champion)
    assert champion["run_id"] == "twin" and champion["previous"]["run_id"] == "tiny"


def test_evaluating_a_run_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    result = evaluate(str(tmp_path), "nothing")
    assert result.returncode == 1
    assert "model/weights.json does not exist: run the train job for RUN_ID=nothing first" in result.stderr


def test_unknown_opponents_are_refused(tmp_path: Path) -> None:
    result = run_job("evaluate", STORAGE_URL=tmp_path, RUN_ID="x", EVAL_OPPONENTS="emm:3,stockfish")
    assert result.returncode == 2
    assert "EVAL_OPPONENTS='emm:3,stockfish'" in result.stderr and "'stockfish' is not an opponent" in result.stderr


def test_re_evaluating_the_champions_run_keeps_the_champion_and_its_history(trained_run: str, tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    store, layout = Store(str(store_path)), RunLayout("ur", "tiny")
    assert evaluate(str(store_path), "tiny").returncode == 0
    twin = RunLayout("ur", "twin")
    store.write_bytes(twin.weights, store.read_bytes(layout.weights))
    assert evaluate(str(store_path), "twin", PROMOTION_THRESHOLD=0.0).returncode == 0  # twin takes over
    before = store.read_json(layout.champion)
    assert before["run_id"] == "twin" and before["previous"]["run_id"] == "tiny"
    result = evaluate(str(store_path), "twin")  # a resumed pipeline re-evaluates its own run
    assert result.returncode == 0, result.stderr
    report = store.read_json(f"{twin.eval}/report.json")
    assert report["reason"] == "run twin is the current champion already" and not report["promoted"]
    assert all(r["opponent"] != "champion" for r in report["results"]), "no match against itself"
    assert store.read_json(layout.champion) == before, "champion.json and its history are kept"


def test_a_champion_file_cannot_make_evaluate_read_outside_its_runs(trained_run: str, tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    store, layout = Store(str(store_path)), RunLayout("ur", "tiny")
    (tmp_path / "secret.json").write_text("not weights")
    store.write_json(layout.champion, {"run_id": "tiny", "weights": "../../../secret.json"})
    twin = RunLayout("ur", "twin")
    store.write_bytes(twin.weights, store.read_bytes(layout.weights))
    result = evaluate(str(store_path), "twin")
    assert result.returncode == 0, result.stderr  # the champion's weights come from its run, not the file's path
    assert any(r["opponent"] == "champion" for r in store.read_json(f"{twin.eval}/report.json")["results"])
    store.write_json(layout.champion, {"run_id": "../../etc", "weights": "x"})
    result = evaluate(str(store_path), "twin")
    assert result.returncode == 1 and "field 'run_id' is '../../etc', not a run id" in result.stderr


@pytest.mark.parametrize("content", [{}, []])
def test_a_champion_file_without_a_run_is_refused_in_one_line(trained_run: str, tmp_path: Path, content: object) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    Store(str(store_path)).write_json(RunLayout("ur", "tiny").champion, content)
    result = evaluate(str(store_path), "tiny")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ur/champion.json: field 'run_id' is None, not a run id; fix or delete the file" in result.stderr, result.stderr
