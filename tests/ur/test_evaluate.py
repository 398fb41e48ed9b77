"""Evaluation and promotion with the real match engine, and the Rust reading of our exports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.storage import RunLayout, StorageError, Store
from tests.conftest import GENERATOR, jobs_env, run_job
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
    # 2b. The champion plays as EVAL_PLAYER too: on paired dice the same network the same way
    #     scores exactly half (against the champion as `value:`, `guided:` would not).
    result = evaluate(str(store_path), "twin", EVAL_GAMES=200, EVAL_PLAYER="guided")
    assert result.returncode == 0, result.stderr
    against = next(r for r in store.read_json(f"{twin.eval}/report.json")["results"] if r["opponent"] == "champion")
    assert against["a"] == "guided:model" and against["a_wins"] == against["b_wins"], against
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


# The real game's table takes half an hour to solve, far too long for a test: this one has its
# shape and format (137,870,097 positions, F64) and seeded random values, so "perfect" is an
# arbitrary but fixed player here. It checks the wiring of EVAL_PERFECT, not perfect play (the
# solver's own tests check the values, on the 2- and 3-piece games).
POSITIONS_7 = 137_870_097


def write_arbitrary_table(store_path: Path) -> None:
    import hashlib

    import numpy as np

    folder = store_path / "ur" / "solution"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": "ludus.ur-solution/1", "pieces": "7", "positions": str(POSITIONS_7), "start_value": "0.5"}
    header = json.dumps({"__metadata__": meta, "values": {"dtype": "F64", "shape": [POSITIONS_7], "data_offsets": [0, 8 * POSITIONS_7]}}).encode()
    digest = hashlib.sha256()
    rng = np.random.default_rng(5)
    with open(folder / "ur7.safetensors", "wb") as out:
        for chunk in (len(header).to_bytes(8, "little"), header):
            out.write(chunk)
            digest.update(chunk)
        for start in range(0, POSITIONS_7, 1 << 24):
            chunk = rng.random(min(1 << 24, POSITIONS_7 - start)).astype("<f8").tobytes()
            out.write(chunk)
            digest.update(chunk)
    (folder / "ur7.json").write_text(json.dumps({"file": "ur7.safetensors", "pieces": 7, "sha256": digest.hexdigest()}))


def test_with_a_solved_table_every_player_is_measured_against_perfect_play(trained_run: str, tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    required = evaluate(str(store_path), "tiny", EVAL_PERFECT="on", EVAL_GAMES=10)
    assert required.returncode == 1 and "EVAL_PERFECT=on needs the solved game" in required.stderr
    assert "ur/solution/ur7.json does not exist" in required.stderr
    write_arbitrary_table(store_path)
    result = evaluate(str(store_path), "tiny", EVAL_GAMES=20)
    assert result.returncode == 0, result.stderr
    store = Store(str(store_path))
    layout = RunLayout("ur", "tiny")
    report = store.read_json(f"{layout.eval}/report.json")
    assert [row["player"] for row in report["perfect_play"]] == ["guided:model", "value:model", "policy:model", "legacy:model", "random", "emm:1"]
    for row in report["perfect_play"]:
        assert row["b"] == "perfect" and row["games"] == 20
        assert row["b_loss_per_decision"] == 0.0  # the table's own best moves give nothing away
        assert 0.0 <= row["a_loss_per_decision"] <= 1.0
    random_row = next(row for row in report["perfect_play"] if row["player"] == "random")
    assert random_row["a_loss_per_decision"] > 0.0
    for row in report["results"]:
        assert row["a_loss_per_decision"] >= 0.0 and row["b_loss_per_decision"] >= 0.0
    text = store.read_bytes(f"{layout.eval}/report.md").decode()
    assert "## Against perfect play" in text and "loss/decision (model)" in text
    # Off: the same evaluation without the table.
    result = evaluate(str(store_path), "tiny", EVAL_GAMES=20, EVAL_PERFECT="off")
    assert result.returncode == 0, result.stderr
    report = store.read_json(f"{layout.eval}/report.json")
    assert "perfect_play" not in report and "a_loss_per_decision" not in report["results"][0]


def champion_chain(store: Store) -> list[str]:
    """The run ids of champion.json and its `previous` records, newest first."""
    record, chain = store.read_json(RunLayout("ur", "tiny").champion), []
    while record:
        chain.append(record["run_id"])
        record = record.get("previous")
    return chain


@pytest.mark.parametrize("attempt", range(3))
def test_two_evaluations_at_once_never_lose_a_promotion(trained_run: str, tmp_path: Path, attempt: int) -> None:
    """Runs c2 and c3 (the champion's own network) are evaluated at the same time against the
    champion with PROMOTION_THRESHOLD=0, so each would be promoted alone. Whatever the timing,
    every report that says "promoted" is in champion.json's history, and the history is true."""
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    store = Store(str(store_path))
    assert evaluate(str(store_path), "tiny").returncode == 0
    for run_id in ("c2", "c3"):
        store.write_bytes(RunLayout("ur", run_id).weights, store.read_bytes(RunLayout("ur", "tiny").weights))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobs", "evaluate"],
            env=jobs_env(STORAGE_URL=store_path, RUN_ID=run_id, EVAL_GAMES=60, EVAL_OPPONENTS="random", PROMOTION_THRESHOLD=0.0),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id in ("c2", "c3")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    promoted = {r: store.read_json(f"{RunLayout('ur', r).eval}/report.json")["promoted"] for r in ("c2", "c3")}
    chain = champion_chain(store)
    assert chain[-1] == "tiny" and len(chain) == len(set(chain)), chain
    assert {r for r, p in promoted.items() if p} == set(chain) - {"tiny"}, (promoted, chain)
    assert any(promoted.values()), "one of them is promoted"


def test_a_promotion_killed_mid_write_leaves_nothing_after_a_rerun(trained_run: str, tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    leftover = store_path / "ur" / "champion.json.tmp-0123abcd"
    leftover.write_text('{"run_id": "half')
    assert evaluate(str(store_path), "tiny").returncode == 0
    assert not leftover.exists(), "the rerun sweeps what the killed promotion left"
    assert Store(str(store_path)).read_json(RunLayout("ur", "tiny").champion)["run_id"] == "tiny"


def test_the_report_never_says_promoted_when_champion_json_was_not_written(trained_run: str, tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """The store fails exactly when champion.json is written (an outage, a kill): the promotion
    fails, and no report that claims it was written before."""
    from jobs.evaluate import run_evaluate
    from jobs.settings import load_job

    store_path = tmp_path / "store"
    shutil.copytree(trained_run, store_path)
    for name, value in {"STORAGE_URL": store_path, "RUN_ID": "tiny", "EVAL_GAMES": 60, "EVAL_OPPONENTS": "random"}.items():
        clean_env.setenv(name, str(value))
    layout = RunLayout("ur", "tiny")
    write_json = Store.write_json

    def failing(self: Store, key: str, obj: object) -> None:
        if key == layout.champion:
            raise StorageError(f"writing {key} failed: injected")
        write_json(self, key, obj)

    clean_env.setattr(Store, "write_json", failing)
    with pytest.raises(StorageError, match="injected"):
        run_evaluate(load_job("evaluate"))  # type: ignore[arg-type]
    assert not (store_path / layout.eval / "report.json").exists(), "no report before the promotion it announces"
