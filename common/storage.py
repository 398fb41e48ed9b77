"""The object-store layer: every read and write of a run goes through here.

Any fsspec URL works (a local folder, s3://bucket/prefix, gs://...). Writes are atomic: on a
local folder a file is written under a temporary name and renamed; on an object store a single
PUT is all-or-nothing. Shards commit data first and manifest last, so a reader that trusts only
manifests (and checks their digests) never sees half a shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from pydantic import BaseModel

UPLOAD_PART_BYTES = 8 << 20  # S3's smallest part is 5 MiB


class StorageError(RuntimeError):
    """A store that cannot be reached or a stored object that is missing or corrupt."""


class DamagedShard(StorageError):
    """A committed shard whose data no longer matches its manifest (size or digest)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages, logs and files."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def scrub(text: str, url: str) -> str:
    """`text` with the password of `url`, if it has one, replaced by *** wherever it appears
    (libraries quote the URL in their own ways in their errors)."""
    _, sep, rest = url.partition("://")
    userinfo = rest.split("/", 1)[0].rpartition("@")[0] if sep else ""
    password = userinfo.partition(":")[2]
    return text.replace(password, "***") if password else text


class Store:
    """One object store rooted at a URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = redact(url)
        options: dict[str, Any] = {}
        if url.startswith("s3://") and os.environ.get("AWS_ENDPOINT_URL"):
            options["client_kwargs"] = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except Exception as e:  # unknown protocols, missing packages, and backends (ftp) that connect here
            raise StorageError(f"STORAGE_URL={redact(url)!r}: {type(e).__name__}: {scrub(str(e), url)}") from e
        self.root = self.root.rstrip("/")
        self.local = "file" in _protocols(self.fs)

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def display(self, key: str) -> str:
        return f"{self.shown.rstrip('/')}/{key}"

    def check(self) -> None:
        """Fails fast, before any work, when the store cannot be used."""
        if self.local:
            self._check_folder()
            return
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.ls(bucket, refresh=True)  # unlike exists(), ls lets connection errors through
        except FileNotFoundError as e:
            raise StorageError(f"STORAGE_URL={self.shown!r}: bucket {bucket!r} does not exist") from e
        except Exception as e:  # network and auth errors differ by backend; all mean "cannot use it"
            raise StorageError(f"STORAGE_URL={self.shown!r}: cannot reach the store: {type(e).__name__}: {scrub(str(e), self.url)}") from e

    def _check_folder(self) -> None:
        """The folder exists or can be made, and a file can be written in it."""
        probe = f"{self.root}/.ludus-write-test-{uuid.uuid4().hex[:8]}"
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            with open(probe, "wb"):
                pass
            os.remove(probe)
        except OSError as e:
            raise StorageError(f"STORAGE_URL={self.shown!r}: cannot write into the folder: {e.strerror or e}") from e

    def exists(self, key: str) -> bool:
        with self._failing("checking", key):
            return bool(self.fs.exists(self.path(key)))

    def size(self, key: str) -> int | None:
        """The object's size in bytes; None if there is no such object."""
        with self._failing("checking", key):
            try:
                return int(self.fs.size(self.path(key)))
            except FileNotFoundError:
                return None

    def modified(self, key: str) -> float | None:
        """When the store last wrote the object (POSIX seconds, the store's clock); None if
        there is no such object."""
        with self._failing("checking", key):
            try:
                return float(self.fs.modified(self.path(key)).timestamp())
            except FileNotFoundError:
                return None

    @contextmanager
    def _failing(self, doing: str, key: str) -> Iterator[None]:
        """Any backend error (an outage, a full disk, a refused credential) as one line naming
        what was being done to which key; the write it interrupted left nothing under the name."""
        try:
            yield
        except StorageError:
            raise
        except FileNotFoundError as e:
            raise StorageError(f"{self.display(key)} does not exist") from e
        except Exception as e:  # botocore, aiohttp and OS errors differ; each means the same here
            raise StorageError(f"{doing} {self.display(key)} failed: {type(e).__name__}: {scrub(str(e), self.url)}") from e

    def read_bytes(self, key: str) -> bytes:
        with self._failing("reading", key):
            return self.fs.cat_file(self.path(key))

    def read_json(self, key: str) -> Any:
        data = self.read_bytes(key)
        try:
            return json.loads(data)
        except json.JSONDecodeError as e:
            raise StorageError(f"{self.display(key)} is not valid JSON: {e}") from e

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._failing("writing", key):
            self._write_bytes(key, data)

    def _write_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        if not self.local:
            self.fs.pipe_file(target, data)
            return
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def write_json(self, key: str, obj: Any) -> None:
        self.write_bytes(key, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())

    def put_file(self, local_path: Path, key: str) -> None:
        with self._failing("uploading to", key):
            self._put_file(local_path, key)

    def _put_file(self, local_path: Path, key: str) -> None:
        target = self.path(key)
        if "s3" in _protocols(self.fs):
            # In parts of UPLOAD_PART_BYTES, two at a time: s3fs would otherwise read a file of
            # up to 100 MiB whole and hold it about twice while sending it.
            self.fs.put_file(str(local_path), target, chunksize=UPLOAD_PART_BYTES, max_concurrency=2)
            return
        if not self.local:
            self.fs.put_file(str(local_path), target)
            return
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        self.fs.put_file(str(local_path), tmp)
        os.replace(tmp, target)

    def get_file(self, key: str, local_path: Path) -> None:
        """Downloads `key` to `local_path` (large files stream, never held in memory whole)."""
        with self._failing("downloading", key):
            self.fs.get_file(self.path(key), str(local_path))

    def delete(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm_file(self.path(key))

    def remove_leftovers(self, prefix: str, name_start: str = "") -> list[str]:
        """Deletes the temporary files (`*.tmp-*`) that a killed writer left under `prefix`, of
        files whose names start with `name_start`; returns their keys. Only a local folder has
        them: an object store's PUT leaves nothing behind."""
        if not self.local:
            return []
        left = [key for key in self.list(prefix) if ".tmp-" in key.rsplit("/", 1)[-1] and key.rsplit("/", 1)[-1].startswith(name_start)]
        for key in left:
            self.fs.rm_file(self.path(key))
        return left

    def list(self, prefix: str) -> list[str]:
        """Keys (relative to the root) of the objects directly under `prefix`."""
        with self._failing("listing", prefix):
            try:
                entries = self.fs.ls(self.path(prefix), detail=False)
            except FileNotFoundError:
                return []
        start = len(self.root) + 1
        return sorted(e.rstrip("/")[start:] for e in entries)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def solution_keys(task: str, pieces: int) -> tuple[str, str]:
    """The solved game's table and its manifest (the solve job): shared by every run of the task."""
    stem = f"{task}/solution/{task}{pieces}"
    return f"{stem}.safetensors", f"{stem}.json"


@dataclass(frozen=True)
class RunLayout:
    """Keys of one run in the store (docs/architecture.md, 'Storage layout')."""

    task: str
    run_id: str
    data_run_id: str = ""  # the run whose shards this one trains on (a sweep's trials); "": its own

    @property
    def run(self) -> str:
        return f"{self.task}/runs/{self.run_id}"

    @property
    def data(self) -> str:
        return f"{self.task}/runs/{self.data_run_id or self.run_id}/data"

    @property
    def run_json(self) -> str:
        return f"{self.run}/run.json"

    @property
    def failure(self) -> str:
        """Which stage of the pipeline failed last, and its error (gone once a rerun succeeds)."""
        return f"{self.run}/failure.json"

    @property
    def lease(self) -> str:
        return f"{self.run}/lease.json"

    def shard_data(self, index: int) -> str:
        return f"{self.data}/shard-{index:05d}.safetensors"

    def shard_manifest(self, index: int) -> str:
        return f"{self.data}/shard-{index:05d}.json"

    @property
    def train(self) -> str:
        return f"{self.run}/train"

    @property
    def checkpoint(self) -> str:
        return f"{self.train}/checkpoint.pt"

    @property
    def metrics(self) -> str:
        return f"{self.train}/metrics.jsonl"

    @property
    def stop(self) -> str:
        """Asks a running training to stop after its epoch (a sweep's pruner writes it)."""
        return f"{self.train}/stop.json"

    @property
    def model(self) -> str:
        return f"{self.run}/model"

    def model_file(self, name: str) -> str:
        """A model artifact (the task's registry names them)."""
        return f"{self.model}/{name}"

    @property
    def weights(self) -> str:
        """Our explicit weights file, which every task writes."""
        return self.model_file("weights.json")

    @property
    def eval(self) -> str:
        return f"{self.run}/eval"

    @property
    def champion(self) -> str:
        return f"{self.task}/champion.json"


class ShardManifest(BaseModel):
    """A shard's commit marker: written after its data, trusted only if the digest matches."""

    shard_index: int
    file: str
    rows: int
    games: int
    bytes: int
    sha256: str
    seed: int
    generator: str
    settings: dict[str, Any]
    elapsed_seconds: float
    created_at: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def commit_shard(store: Store, layout: RunLayout, local_file: Path, manifest: ShardManifest) -> None:
    """Uploads the data, then the manifest: the manifest's appearance is the commit."""
    store.put_file(local_file, layout.shard_data(manifest.shard_index))
    store.write_json(layout.shard_manifest(manifest.shard_index), manifest.model_dump())


def read_manifest(store: Store, layout: RunLayout, index: int) -> ShardManifest | None:
    key = layout.shard_manifest(index)
    if not store.exists(key):
        return None
    try:
        return ShardManifest.model_validate(store.read_json(key))
    except ValueError as e:
        raise StorageError(f"{store.display(key)} is not a valid shard manifest: {e}") from e


def read_committed_shard(store: Store, layout: RunLayout, index: int, known: ShardManifest | None = None) -> tuple[ShardManifest, bytes]:
    """A committed shard's manifest and bytes, refusing a missing manifest or a bad digest. A reader
    that holds the manifest already (`known`, as read before training) checks the data against it
    and spares the second read."""
    manifest = known if known is not None else read_manifest(store, layout, index)
    if manifest is None:
        raise StorageError(
            f"shard {index}: {store.display(layout.shard_manifest(index))} does not exist "
            "(the shard was never committed; rerun the generate job for it)"
        )
    data = store.read_bytes(layout.shard_data(index))
    digest = sha256_hex(data)
    if digest != manifest.sha256:
        raise DamagedShard(
            f"shard {index}: {store.display(layout.shard_data(index))} is corrupt: "
            f"sha256 {digest[:16]}... does not match the manifest's {manifest.sha256[:16]}...",
            index,
        )
    return manifest, data


def withdraw_shard(store: Store, layout: RunLayout, index: int) -> None:
    """Takes back a damaged shard's commit (its manifest): the next generate writes it again."""
    store.delete(layout.shard_manifest(index))


def damaged_by_size(store: Store, layout: RunLayout, indices: list[int]) -> list[int]:
    """The committed shards among `indices` whose data file is missing or not the size its
    manifest records: a check that reads no data (a flipped byte needs the digest, which the
    trainer checks on its read)."""
    damaged = []
    for index in indices:
        manifest = read_manifest(store, layout, index)
        if manifest is None:
            continue
        if store.size(layout.shard_data(index)) != manifest.bytes:
            damaged.append(index)
    return damaged


def committed_shard_indices(store: Store, layout: RunLayout) -> list[int]:
    """Indices of shards whose manifest exists (data files without one are not committed). Files
    that are not named like a manifest (shard-00012.json) are none of ours and are ignored."""
    names = (key.rsplit("/", 1)[-1] for key in store.list(layout.data))
    return sorted(int(m.group(1)) for name in names if (m := re.fullmatch(r"shard-(\d{5})\.json", name)))


def read_metrics(store: Store, layout: RunLayout) -> list[dict[str, Any]]:
    """The trainer's per-epoch metrics (train/metrics.jsonl); empty before the first epoch ends."""
    if not store.exists(layout.metrics):
        return []
    lines = store.read_bytes(layout.metrics).decode(errors="replace").splitlines()
    try:
        return [json.loads(line) for line in lines if line]
    except json.JSONDecodeError as e:
        raise StorageError(f"{store.display(layout.metrics)} is not one JSON object per line: {e}") from e
