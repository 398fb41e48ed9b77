"""The store: atomic commits, manifests as commit markers, digests, reachability checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.storage import (
    RunLayout,
    ShardManifest,
    StorageError,
    Store,
    commit_shard,
    committed_shard_indices,
    read_committed_shard,
    sha256_file,
)
from tests.conftest import make_bucket, run_job


def manifest_for(path: Path, index: int) -> ShardManifest:
    return ShardManifest(
        shard_index=index, file=path.name, rows=1, games=1, bytes=path.stat().st_size, sha256=sha256_file(path),
        seed=0, generator="test", settings={}, elapsed_seconds=0.0, created_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


def commit_and_read(store: Store, tmp_path: Path) -> None:
    layout = RunLayout("ur", "r1")
    data = tmp_path / "shard.bin"
    data.write_bytes(b"0123456789" * 1000)
    assert committed_shard_indices(store, layout) == []
    commit_shard(store, layout, data, manifest_for(data, 0))
    assert committed_shard_indices(store, layout) == [0]
    manifest, payload = read_committed_shard(store, layout, 0)
    assert payload == data.read_bytes() and manifest.rows == 1
    store.write_bytes(layout.shard_data(0), b"tampered")
    with pytest.raises(StorageError, match=r"shard 0: .*shard-00000\.safetensors is corrupt: sha256"):
        read_committed_shard(store, layout, 0)
    with pytest.raises(StorageError, match=r"shard 1: .*shard-00001\.json does not exist \(the shard was never committed"):
        read_committed_shard(store, layout, 1)


def test_local_store_commits_and_verifies(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    commit_and_read(store, tmp_path)
    leftovers = [p.name for p in (tmp_path / "store").rglob("*") if ".tmp-" in p.name]
    assert leftovers == [], "atomic writes leave no temporary file"


def test_s3_store_commits_and_verifies(s3_env: dict[str, str], tmp_path: Path) -> None:
    make_bucket("storage-test")
    store = Store("s3://storage-test/some/prefix")
    store.check()
    commit_and_read(store, tmp_path)


def test_a_data_file_without_manifest_is_not_committed(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    layout = RunLayout("ur", "r2")
    store.write_bytes(layout.shard_data(0), b"half a shard")
    assert committed_shard_indices(store, layout) == []


def test_missing_bucket_is_refused_before_work(s3_env: dict[str, str]) -> None:
    result = run_job("pipeline", timeout=120, STORAGE_URL="s3://no-such-bucket/x", GAMES=2, SHARDS=1)
    assert result.returncode != 0
    assert "STORAGE_URL='s3://no-such-bucket/x': bucket 'no-such-bucket' does not exist" in result.stderr


def test_unreachable_endpoint_is_refused_before_work(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = run_job("generate", timeout=120, STORAGE_URL="s3://bucket/x", GAMES=2, SHARDS=1)
    assert result.returncode != 0
    assert "STORAGE_URL='s3://bucket/x': cannot reach the store" in result.stderr, result.stderr


def test_a_password_in_the_storage_url_is_never_shown(s3_env: dict[str, str], tmp_path: Path) -> None:
    from common.storage import redact

    assert redact("s3://key:hunter2@bucket/prefix") == "s3://key:***@bucket/prefix"
    assert redact("s3://bucket/pre@fix") == "s3://bucket/pre@fix", "an @ in the path is not a password"
    assert Store("s3://key:hunter2@bucket/prefix").display("x/y") == "s3://key:***@bucket/prefix/x/y"
    result = run_job("generate", STORAGE_URL="s3://key:hunter2@no-such-bucket-here/x", GAMES=4, timeout=120)
    assert result.returncode != 0
    assert "hunter2" not in result.stderr + result.stdout and "key:***@no-such-bucket-here" in result.stderr, result.stderr


def test_a_folder_that_cannot_be_made_or_written_is_refused_before_any_work(tmp_path: Path) -> None:
    result = run_job("generate", STORAGE_URL="/proc/ludus-store", GAMES=4, timeout=60)
    assert result.returncode == 1 and "STORAGE_URL='/proc/ludus-store': cannot write into the folder" in result.stderr, result.stderr
    spaced = run_job("generate", STORAGE_URL=f"  {tmp_path / 'store'} ", GAMES=2, SHARDS=1, DEPTH=1, timeout=120)
    assert spaced.returncode == 0, spaced.stderr
    assert (tmp_path / "store" / "ur").is_dir(), "surrounding spaces are not part of the path"


def test_stray_or_garbage_files_give_one_line_errors_naming_them(tmp_path: Path) -> None:
    from common.storage import RunLayout, committed_shard_indices, read_metrics

    store, layout = Store(str(tmp_path)), RunLayout("ur", "stray")
    store.write_json(layout.shard_manifest(3), {"x": 1})
    store.write_bytes(f"{layout.run}/data/shard-abc.json", b"{}")
    store.write_bytes(f"{layout.run}/data/notes.json", b"{}")
    assert committed_shard_indices(store, layout) == [3], "files not named like a manifest are ignored"
    store.write_bytes(layout.metrics, b'{"epoch": 1}\nnot json\n')
    with pytest.raises(StorageError, match=r"stray/train/metrics\.jsonl is not one JSON object per line"):
        read_metrics(store, layout)


def test_an_unreachable_store_during_a_write_is_one_line_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: an outage
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = Store("s3://bucket/prefix")
    with pytest.raises(StorageError, match=r"^writing s3://bucket/prefix/ur/runs/r/data/shard-00000\.json failed: \w+"):
        store.write_bytes("ur/runs/r/data/shard-00000.json", b"{}")


def test_a_store_whose_backend_cannot_connect_is_one_line() -> None:
    from tests.conftest import free_port

    with pytest.raises(StorageError, match=r"^STORAGE_URL='ftp://127\.0\.0\.1:\d+/x': ConnectionRefusedError"):
        Store(f"ftp://127.0.0.1:{free_port()}/x")


def test_an_s3_upload_holds_parts_not_the_whole_file(s3_env: dict[str, str], tmp_path: Path) -> None:
    """The audit measured 1.9 times the shard in memory during an upload; now a few parts."""
    import subprocess
    import sys

    make_bucket("memory")
    size = 96 << 20
    local = tmp_path / "shard.bin"
    local.write_bytes(os.urandom(size))
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from common.storage import Store\n"
        "store = Store('s3://memory/p')\n"
        "store.exists('warm-up')\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "store.put_file(Path(sys.argv[1]), 'shard.bin')\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(local)], capture_output=True, text=True, check=True, env=os.environ)
    grew = int(out.stdout.strip().splitlines()[-1])
    assert Store("s3://memory/p").read_bytes("shard.bin") == local.read_bytes()
    assert grew < size / 2, f"the upload of {size >> 20} MiB grew the peak memory by {grew >> 20} MiB"
