"""Bad settings stop a job before any work, naming the variable, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.settings import ConfigError, GenerateSettings, PipelineSettings, TrainSettings, load
from tests.conftest import run_job


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("GAMES", "-5", "greater than or equal to 1"),
        ("DEPTH", "abc", "valid integer"),
        ("SHARDS", "0", "greater than or equal to 1"),
        ("TASK", "chess", "'ur'"),
        ("STORAGE_URL", "nosuch://bucket/x", "unknown scheme"),
        ("DEVICE", "tpu", "'auto', 'cuda', 'mps' or 'cpu'"),
        ("EXPLORATION", "2", "less than or equal to 1"),
        ("RUN_ID", "../escape", "a-z, 0-9"),
    ],
)
def test_bad_values_exit_2_before_any_work(tmp_path: Path, name: str, value: str, allowed: str) -> None:
    store = tmp_path / "store"
    settings = {"STORAGE_URL": store, "GAMES": 4, "SHARDS": 2, name: value}
    result = run_job("pipeline", timeout=60, **settings)
    assert result.returncode == 2, result.stderr
    assert f"{name}={value!r}" in result.stderr and allowed in result.stderr, result.stderr
    assert not store.exists(), "nothing may be written"


def test_games_must_cover_every_shard(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GAMES", "1")
    clean_env.setenv("SHARDS", "3")
    with pytest.raises(ConfigError, match="GAMES=1 is less than SHARDS=3"):
        load(GenerateSettings)


def test_presets_set_defaults_and_variables_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PRESET", "production")
    s = load(PipelineSettings)
    assert (s.games, s.epochs) == (2000, 75)
    clean_env.setenv("PRESET", "test")
    clean_env.setenv("EPOCHS", "3")
    s = load(PipelineSettings)
    assert (s.games, s.epochs) == (100, 3)
    assert load(TrainSettings).epochs == 3


def test_shard_index_defaults_to_the_kubernetes_completion_index(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JOB_COMPLETION_INDEX", "3")
    clean_env.setenv("SHARDS", "4")
    assert load(GenerateSettings).shard_index == 3
    clean_env.setenv("SHARD_INDEX", "1")
    assert load(GenerateSettings).shard_index == 1


def test_games_split_evenly_over_shards(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GAMES", "10")
    clean_env.setenv("SHARDS", "4")
    s = load(GenerateSettings)
    assert [s.games_in_shard(i) for i in range(4)] == [3, 3, 2, 2]


def test_run_ids_are_fresh_and_sortable(clean_env: pytest.MonkeyPatch) -> None:
    a, b = load(PipelineSettings).run_id, load(PipelineSettings).run_id
    assert a != b, "two runs never share an id"
    assert a[:15] <= b[:15], "the timestamp prefix sorts by start time"


@pytest.mark.parametrize("job", ["generate", "train", "evaluate", "pipeline"])
def test_help_lists_every_variable_with_its_default(job: str) -> None:
    import subprocess
    import sys

    from jobs.__main__ import JOBS

    out = subprocess.run([sys.executable, "-m", "jobs", job, "--help"], capture_output=True, text=True, check=True).stdout
    for name in JOBS[job][0].model_fields:
        assert name.upper() in out, f"{name.upper()} missing from `{job} --help`"
    assert "'./store'" in out
