"""The pieces of data-parallel training that need no second process: the torchrun command the
train job runs (pinned here: no GPU is lent to these tests, so the CUDA launch is checked as a
command, not run), how ranks share a batch, which backend each device gets, and how a failure
summary from torchrun becomes one line. The 2-rank runs themselves are in tests/test_contract.py
and tests/test_pipeline.py."""

from __future__ import annotations

import sys

import pytest
import torch

from jobs.settings import load_job
from jobs.train import exit_reason, failed_ranks, processes_per_node, torchrun_command
from trainer.distributed import World, backend


def settings(clean_env: pytest.MonkeyPatch, **values: object):  # type: ignore[no-untyped-def]
    for name, value in values.items():
        clean_env.setenv(name, str(value))
    return load_job("train")


def test_one_node_launches_standalone_and_several_meet_at_the_endpoint(clean_env: pytest.MonkeyPatch) -> None:
    one = settings(clean_env, RUN_ID="r1", TRAIN_PROCESSES=8, DEVICE="cuda")
    assert torchrun_command(one, 8) == [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "8", "--max-restarts", "0", "--standalone", "-m", "jobs", "train",
    ]  # fmt: skip
    many = settings(clean_env, RUN_ID="r2", TRAIN_PROCESSES=4, TRAIN_NODES=2, TRAIN_RDZV_ENDPOINT="ludus-r2-train-0.ludus-r2:29400")
    assert torchrun_command(many, 4)[5:] == [
        "--max-restarts", "0", "--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "ludus-r2-train-0.ludus-r2:29400",
        "--rdzv-id", "r2", "-m", "jobs", "train",
    ]  # fmt: skip


def test_the_first_pod_of_an_indexed_train_job_hosts_the_rendezvous(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("JOB_COMPLETION_INDEX", "0")
    first = settings(clean_env, RUN_ID="r3", TRAIN_NODES=2, TRAIN_RDZV_ENDPOINT="ludus-r3-train-0.ludus-r3-train:29400")
    assert first.train_node_index == 0 and torchrun_command(first, 1)[-5:-3] == ["--rdzv-conf", "is_host=1"]
    clean_env.setenv("JOB_COMPLETION_INDEX", "1")
    assert torchrun_command(load_job("train"), 1)[-5:-3] == ["--rdzv-conf", "is_host=0"]
    clean_env.delenv("JOB_COMPLETION_INDEX")
    assert "--rdzv-conf" not in torchrun_command(load_job("train"), 1), "elsewhere torchrun decides from the endpoint"
    clean_env.setenv("TRAIN_NODE_INDEX", "2")
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="TRAIN_NODE_INDEX=2 is not below TRAIN_NODES=2"):
        load_job("train")


def test_several_nodes_need_an_endpoint_and_processes_default_to_the_gpus(clean_env: pytest.MonkeyPatch) -> None:
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="TRAIN_NODES=2 needs TRAIN_RDZV_ENDPOINT"):
        settings(clean_env, TRAIN_NODES=2)
    with pytest.raises(ConfigError, match="TRAIN_RDZV_ENDPOINT='host; rm -rf /'"):
        settings(clean_env, TRAIN_NODES=2, TRAIN_RDZV_ENDPOINT="host; rm -rf /")
    clean_env.delenv("TRAIN_NODES")
    clean_env.delenv("TRAIN_RDZV_ENDPOINT")
    expected = torch.cuda.device_count() if torch.cuda.is_available() else 1
    assert processes_per_node(settings(clean_env)) == expected
    assert processes_per_node(settings(clean_env, DEVICE="cpu")) == 1


def test_ranks_share_every_batch_and_each_device_gets_its_backend() -> None:
    index = torch.arange(10)
    shares = [World(rank=r, size=3).share(index).tolist() for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]], "every row once"
    assert World().share(index).tolist() == index.tolist()
    assert World(rank=1, size=2, local_rank=1).device(torch.device("cuda")) == torch.device("cuda", 1)
    assert World(rank=1, size=2, local_rank=1).device(torch.device("cpu")) == torch.device("cpu")
    assert backend(torch.device("cuda", 0)) == "nccl" and backend(torch.device("cpu")) == "gloo"


def test_a_torchrun_failure_summary_becomes_the_ranks_and_their_causes() -> None:
    summary = """
Failures:
[1]:
  time      : 2026-12-07_05:00:01
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 11)
Root Cause (first observed failure):
[0]:
  time      : 2026-12-07_05:00:00
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 12)
"""
    assert failed_ranks(summary.splitlines()) == [(1, -9), (0, 1)]
    assert exit_reason(-9) == "killed by SIGKILL" and exit_reason(1) == "exit code 1"
