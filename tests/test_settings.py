"""Bad settings stop a job before any work, naming the variable, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from jobs.settings import load_job
from tests.conftest import run_job


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("GAMES", "-5", "greater than or equal to 1"),
        ("DEPTH", "abc", "valid integer"),
        ("SHARDS", "0", "greater than or equal to 1"),
        ("TASK", "chess", "unknown task 'chess'; registered tasks: predator, ur"),
        ("STORAGE_URL", "nosuch://bucket/x", "unknown scheme"),
        ("DEVICE", "tpu", "'auto', 'cuda', 'mps' or 'cpu'"),
        ("EXPLORATION", "2", "less than or equal to 1"),
        ("RUN_ID", "../escape", "a-z, 0-9"),
        ("SHARD_WAIT_SECONDS", "inf", "finite number"),
        ("SOFT_POLICY_TEMPERATURE", "inf", "finite number"),
        ("LEARNING_RATE", "nan", "finite number"),
        ("WEIGHT_DECAY", "inf", "finite number"),
        ("GAMES", "4294967296", "less than or equal to 4294967295"),
        ("STORAGE_URL", "", "empty: expected a folder path"),
        ("STORAGE_URL", "file://", "file:// names no folder"),
        ("STORAGE_URL", "memory://runs", "lives inside one process"),
        ("STORAGE_URL", "s3://", "s3:// names no bucket"),
        ("SEED", str(2**64 - 1), "less than or equal to"),
        ("THREADS", "100000", "less than or equal to 1024"),
        ("EVAL_GAMES", "1000000000000", "less than or equal to 10000000"),
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
        load_job("generate")


def test_presets_set_defaults_and_variables_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PRESET", "production")
    s = load_job("pipeline")
    assert (s.games, s.epochs) == (2000, 75)
    clean_env.setenv("PRESET", "test")
    clean_env.setenv("EPOCHS", "3")
    s = load_job("pipeline")
    assert (s.games, s.epochs) == (100, 3)
    assert load_job("train").epochs == 3


def test_shard_index_defaults_to_the_kubernetes_completion_index(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JOB_COMPLETION_INDEX", "3")
    clean_env.setenv("SHARDS", "4")
    assert load_job("generate").shard_index == 3
    clean_env.setenv("SHARD_INDEX", "1")
    assert load_job("generate").shard_index == 1


def test_games_split_evenly_over_shards(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GAMES", "10")
    clean_env.setenv("SHARDS", "4")
    s = load_job("generate")
    assert [s.games_in_shard(i) for i in range(4)] == [3, 3, 2, 2]


def test_run_ids_are_fresh_and_sortable(clean_env: pytest.MonkeyPatch) -> None:
    a, b = load_job("pipeline").run_id, load_job("pipeline").run_id
    assert a != b, "two runs never share an id"
    assert a[:15] <= b[:15], "the timestamp prefix sorts by start time"


@pytest.mark.parametrize("job", ["generate", "train", "evaluate", "pipeline"])
def test_help_lists_every_variable_with_its_default(job: str) -> None:
    import subprocess
    import sys

    from jobs.settings import settings_class

    out = subprocess.run([sys.executable, "-m", "jobs", job, "--help"], capture_output=True, text=True, check=True).stdout
    for name in settings_class(job, "ur").model_fields:
        assert name.upper() in out, f"{name.upper()} missing from `{job} --help`"
    assert "'./store'" in out


@pytest.fixture
def second_task(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A second task in the registry, for the rules between tasks: Ur's entry under another name
    with a generate setting of its own (SPEED) instead of Ur's DEPTH and EXPLORATION."""
    import dataclasses

    from pydantic import BaseModel, Field

    from jobs import settings
    from jobs.tasks import REGISTRY

    class ToyGenerateSettings(BaseModel):
        speed: int = Field(1, ge=1, description="How fast the toy plays")

    toy = dataclasses.replace(REGISTRY["ur"], name="toy", title="a toy", settings={**REGISTRY["ur"].settings, "generate": ToyGenerateSettings})
    monkeypatch.setitem(REGISTRY, "toy", toy)
    settings.settings_class.cache_clear()
    yield toy
    settings.settings_class.cache_clear()


def test_a_variable_of_another_task_is_refused_naming_it_and_its_task(clean_env: pytest.MonkeyPatch, second_task: object) -> None:
    clean_env.setenv("TASK", "toy")
    assert load_job("generate").speed == 1  # type: ignore[attr-defined]
    clean_env.setenv("DEPTH", "3")
    with pytest.raises(ConfigError, match=r"DEPTH='3': DEPTH is a setting of TASK=ur \(the Royal Game of Ur\), not of TASK=toy"):
        load_job("generate")
    clean_env.delenv("DEPTH")
    clean_env.setenv("TASK", "ur")
    clean_env.setenv("SPEED", "2")
    with pytest.raises(ConfigError, match=r"SPEED='2': SPEED is a setting of TASK=toy"):
        load_job("pipeline")


def test_the_predators_generator_refuses_urs_depth(tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = run_job("generate", timeout=60, STORAGE_URL=store, TASK="predator", GAMES=4, DEPTH=3)
    assert result.returncode == 2 and "DEPTH='3': DEPTH is a setting of TASK=ur (the Royal Game of Ur), not of TASK=predator" in result.stderr
    assert not store.exists(), "nothing may be written"


def test_a_task_without_a_learner_runs_only_its_generator(clean_env: pytest.MonkeyPatch, second_task: object) -> None:
    import dataclasses

    from jobs.tasks import REGISTRY

    clean_env.setitem(REGISTRY, "toy", dataclasses.replace(REGISTRY["toy"], learner=None, evaluate=None))
    clean_env.setenv("TASK", "toy")
    assert load_job("generate").task == "toy"
    for job in ("train", "evaluate", "pipeline"):
        with pytest.raises(ConfigError, match=f"has no trainer or evaluator yet, so the {job} job cannot run it"):
            load_job(job)


def test_task_defaults_apply_and_variables_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TASK", "predator")
    s = load_job("pipeline")
    assert (s.eval_games, s.batch_size) == (100, 1024)  # type: ignore[attr-defined]
    clean_env.setenv("EVAL_GAMES", "7")
    assert load_job("evaluate").eval_games == 7  # type: ignore[attr-defined]
    clean_env.setenv("TASK", "ur")
    clean_env.delenv("EVAL_GAMES")
    assert load_job("evaluate").eval_games == 1000  # type: ignore[attr-defined]


def test_each_task_gets_only_its_own_settings(clean_env: pytest.MonkeyPatch, second_task: object) -> None:
    from jobs.settings import settings_class

    ur, toy = settings_class("generate", "ur").model_fields, settings_class("generate", "toy").model_fields
    assert "depth" in ur and "depth" not in toy and "speed" in toy and "speed" not in ur
    assert "soft_policy_temperature" in settings_class("pipeline", "ur").model_fields


def test_the_trainer_config_reads_no_environment(clean_env: pytest.MonkeyPatch) -> None:
    from trainer import TrainConfig

    clean_env.setenv("BATCH_SIZE", "7")
    assert TrainConfig().batch_size == 1024, "a notebook's config must not pick up the shell's settings"


def test_a_misspelled_variable_gets_a_warning_naming_the_setting(tmp_path: Path) -> None:
    from jobs.settings import warn_about_misspellings

    assert warn_about_misspellings({"EPOHCS": "5", "GAME": "3", "PATH": "/bin", "HOME": "/root", "TERM": "x", "EPOCHS": "2"}) == [
        "warning: EPOHCS is not a setting; did you mean EPOCHS? (it is ignored)",
        "warning: GAME is not a setting; did you mean GAMES? (it is ignored)",
    ]
    result = run_job("generate", timeout=60, STORAGE_URL=tmp_path / "store", GAMES="nope", EPOHCS=5)
    assert "EPOHCS is not a setting; did you mean EPOCHS?" in result.stderr


def test_a_generator_that_is_not_executable_or_a_missing_device_stops_before_any_work(tmp_path: Path) -> None:
    import torch

    store = tmp_path / "store"
    plain = tmp_path / "rust_gen"
    plain.write_text("not a program")
    result = run_job("pipeline", timeout=60, STORAGE_URL=store, GAMES=4, GENERATOR_BIN=plain)
    assert result.returncode == 2 and "the file is not executable" in result.stderr, result.stderr
    if not torch.cuda.is_available():  # the error path needs a machine without CUDA, like this one
        result = run_job("pipeline", timeout=120, STORAGE_URL=store, GAMES=4, DEVICE="cuda")
        assert result.returncode == 2 and "DEVICE='cuda': PyTorch sees no CUDA device" in result.stderr, result.stderr
    assert not store.exists(), "nothing may be written"


def test_a_pipeline_warns_about_a_misspelling_once_not_in_every_stage(tmp_path: Path) -> None:
    settings = {"GAMES": 4, "SHARDS": 2, "EPOCHS": 1, "DEPTH": 1, "EVAL_GAMES": 2, "EVAL_OPPONENTS": "random", "DEVICE": "cpu"}
    result = run_job("pipeline", timeout=300, STORAGE_URL=tmp_path / "store", EPOHCS=5, **settings)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("EPOHCS is not a setting") == 1, result.stderr


def test_the_predators_teacher_takes_planner_settings(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TASK", "predator")
    clean_env.setenv("TEACHER", "planner:replan=1:follow=0")
    assert load_job("pipeline").teacher == "planner:replan=1:follow=0"  # type: ignore[attr-defined]
    for bad in ("planner:depth=3", "oracle", "planner;rm", "planner:replan"):
        clean_env.setenv("TEACHER", bad)
        with pytest.raises(ConfigError, match=rf"TEACHER='{bad}': .*expected pursuit, planner or planner:KEY=VALUE"):
            load_job("generate")
