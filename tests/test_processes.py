"""Nothing is orphaned (hardening, items 7 and 14): a pipeline killed with -9 takes its trainer
with it, a generate job stopped with SIGTERM takes `rust_gen` with it and removes its temporary
folder, and the next job removes the temporary folders of processes killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from common.processes import Terminated, alive, raise_on_sigterm, run_child
from common.storage import RunLayout, Store
from tests.test_pipeline import TINY, start_job, wait_for


def processes_with(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (a test's own STORAGE_URL)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or a zombie
                continue
    return found


def command_of(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_pipeline_killed_with_9_takes_its_trainer_with_it(generator: Path, tmp_path: Path) -> None:
    store_url = str(tmp_path / "store")
    store, layout = Store(store_url), RunLayout("ur", "orphan")
    proc = start_job("pipeline", **{**TINY, "STORAGE_URL": store_url, "RUN_ID": "orphan", "GAMES": 40, "EPOCHS": 200, "PATIENCE": 200})
    wait_for(lambda: store.exists(layout.metrics), timeout=300)
    assert any("jobs train" in command_of(pid) for pid in processes_with(store_url)), "the trainer runs"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    wait_for(lambda: not [pid for pid in processes_with(store_url) if command_of(pid)], timeout=20)


def test_a_generate_job_stopped_with_sigterm_stops_rust_gen_and_cleans_up(generator: Path, tmp_path: Path) -> None:
    store_url, temp = str(tmp_path / "store"), tmp_path / "tmp"
    temp.mkdir()
    settings = {**TINY, "STORAGE_URL": store_url, "RUN_ID": "sigterm", "DEPTH": 5, "GAMES": 400, "TMPDIR": temp}
    proc = start_job("generate", **settings)
    wait_for(lambda: any("rust_gen ur generate" in command_of(pid) for pid in processes_with(store_url)), timeout=60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    wait_for(lambda: not [pid for pid in processes_with(store_url) if command_of(pid)], timeout=20)
    assert not list(temp.iterdir()), "the job's temporary folder is gone"


def test_the_next_job_removes_temporary_folders_of_dead_processes(tmp_path: Path) -> None:
    from tests.conftest import run_job

    dead = 4_000_000  # above any pid_max: no such process
    stale = tmp_path / f"ludus-shard-{dead}-abc"
    live = tmp_path / f"ludus-shard-{os.getpid()}-abc"
    unrelated = tmp_path / "ludus-notes"
    for folder in (stale, live, unrelated):
        folder.mkdir()
        (folder / "half.safetensors").write_bytes(b"x")
    result = run_job("generate", STORAGE_URL=tmp_path / "store", TMPDIR=tmp_path, GAMES=0)  # refused, after the sweep
    assert result.returncode == 2
    assert not stale.exists() and live.exists() and unrelated.exists()


def test_a_sigterm_while_a_child_starts_still_stops_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race behind a failed CI run: a SIGTERM that Python raises inside Popen's constructor,
    after the fork, leaves the child running with no Popen to stop it, while cleanup removes the
    temporary folder the child writes to. Here the signal comes at that moment every time."""
    started: list[int] = []
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def execute_then_sigterm(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        execute_child(self, *args, **kwargs)
        started.append(self.pid)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", execute_then_sigterm)
    previous = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()
    try:
        with pytest.raises(Terminated):
            run_child(["sleep", "30"])
        with pytest.raises(FileNotFoundError):  # a child that cannot start releases the hold
            run_child(["/nonexistent/rust_gen"])
        with pytest.raises(Terminated):  # ... so a later SIGTERM is raised at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs here at the latest, and ends the sleep
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert started and not alive(started[0]), "the child was stopped and waited for"
