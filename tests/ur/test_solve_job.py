"""The solve job (TASK=ur) with the real generator binary, into a real S3 server (SeaweedFS):
the table and its manifest are committed once, the table is the one the manifest describes,
a rerun does nothing, and a task without a solver or a bad PIECES is refused by name."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import fsspec

from tests.conftest import make_bucket, run_job


def test_solve_job_commits_the_table_once_on_a_real_s3_server(generator: Path, s3_env: dict[str, str]) -> None:
    make_bucket("solve")
    url = "s3://solve/store"
    first = run_job("solve", TASK="ur", PIECES=2, STORAGE_URL=url, **s3_env)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout.strip().splitlines()[-1])
    fs = fsspec.filesystem("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    table = fs.cat_file("solve/store/ur/solution/ur2.safetensors")
    assert hashlib.sha256(table).hexdigest() == manifest["sha256"]
    assert json.loads(fs.cat_file("solve/store/ur/solution/ur2.json")) == manifest
    # The published 2-piece start value, in the manifest and in the table's own header.
    assert abs(manifest["start_value"] - 0.518572907496) < 5e-12
    header = json.loads(table[8 : 8 + struct.unpack("<Q", table[:8])[0]])
    assert header["__metadata__"]["format"] == "ludus.ur-solution/1"
    assert header["values"]["dtype"] == "F64" and header["values"]["shape"] == [manifest["positions"]]
    assert manifest["positions"] == 12869 and manifest["bytes"] == len(table)
    modified = fs.info("solve/store/ur/solution/ur2.json")["LastModified"]
    again = run_job("solve", TASK="ur", PIECES=2, STORAGE_URL=url, **s3_env)
    assert again.returncode == 0, again.stderr
    assert "already solved" in again.stderr
    fs.invalidate_cache()
    assert fs.info("solve/store/ur/solution/ur2.json")["LastModified"] == modified


def test_solve_job_refuses_what_it_cannot_solve(tmp_path: Path) -> None:
    predator = run_job("solve", TASK="predator", STORAGE_URL=tmp_path)
    assert predator.returncode == 2 and "has no exact solver" in predator.stderr
    too_many = run_job("solve", TASK="ur", PIECES=8, STORAGE_URL=tmp_path)
    assert too_many.returncode == 2 and "PIECES='8'" in too_many.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_perfect_teacher_needs_the_solved_table_and_checks_its_digest(generator: Path, tmp_path: Path) -> None:
    missing = run_job("generate", TASK="ur", TEACHER="perfect", GAMES=2, STORAGE_URL=tmp_path)
    assert missing.returncode == 1
    assert "ur/solution/ur7.json does not exist" in missing.stderr and "solve job" in missing.stderr
    solution = tmp_path / "ur" / "solution"
    solution.mkdir(parents=True)
    (solution / "ur7.safetensors").write_bytes(b"not the table")
    (solution / "ur7.json").write_text(json.dumps({"sha256": "0" * 64}))
    damaged = run_job("generate", TASK="ur", TEACHER="perfect", GAMES=2, STORAGE_URL=tmp_path)
    assert damaged.returncode == 1 and "does not match the sha256" in damaged.stderr
    assert not (tmp_path / "ur" / "runs").exists() or not list((tmp_path / "ur" / "runs").rglob("*.safetensors"))
