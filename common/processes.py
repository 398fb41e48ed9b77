"""Child processes that die with their parent: a killed job (SIGTERM, or kill -9, which no
handler sees) never leaves a trainer or a generator running on behind it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True) if sys.platform == "linux" else None


def die_with_parent() -> None:
    """Runs in the child between fork and exec: the kernel sends it SIGTERM when the thread
    that started it ends. Linux only; elsewhere a no-op."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_options() -> dict[str, Any]:
    """Keyword arguments for subprocess.run / Popen."""
    return {"preexec_fn": die_with_parent} if _libc is not None else {}


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that cleanup (`finally`, temporary folders,
    `child` stopping its child) runs before the process ends."""


class _Hold:
    """While a child starts (`child`), a SIGTERM is held rather than raised: raised inside
    Popen's constructor, after the fork, it would leave the child running with no Popen to kill
    it, beside a temporary folder that cleanup is already removing. Main thread only, as
    signal handlers are."""

    depth = 0
    pending = False


def raise_on_sigterm() -> None:
    def handler(signum: int, _frame: Any) -> None:
        if _Hold.depth:
            _Hold.pending = True
            return
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _release() -> None:
    """Ends a hold; raises the SIGTERM that came during it, if one did."""
    _Hold.depth -= 1
    if not _Hold.depth and _Hold.pending:
        _Hold.pending = False
        raise Terminated(f"signal {signal.SIGTERM.value}")


STOP_GRACE_SECONDS = 30


@contextmanager
def child(args: Sequence[str], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """A child process (dying with its parent) that is stopped and waited for however the block
    ends: an exception, SIGTERM included, sends it SIGTERM, so that a child job cleans up too,
    and SIGKILL if it has not ended after STOP_GRACE_SECONDS."""
    _Hold.depth += 1
    try:
        proc = subprocess.Popen(args, **popen, **child_options())
    except BaseException:
        _release()  # a held SIGTERM is the bigger news: it replaces the error, which it chains
        raise
    with proc:  # closes the pipes and waits for the child
        try:
            _release()  # a SIGTERM held while it started is raised here, with the child in hand
            yield proc
        except BaseException:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def run_child(args: Sequence[str], **popen: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run(args, check=False, **popen) through `child`: nothing outlives a stopped job."""
    with child(args, **popen) as proc:
        stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(list(args), proc.returncode, stdout, stderr)


def temp_prefix(what: str) -> str:
    """A temporary folder's prefix that names its process, so that a later job can remove what a
    process killed with -9 left behind (`sweep_temp_folders`)."""
    return f"ludus-{what}-{os.getpid()}-"


TEMP_PATTERN = re.compile(r"^ludus-[a-z]+-(\d+)-")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_temp_folders(folder: str | None = None) -> list[str]:
    """Removes our temporary folders whose process is gone; returns their paths."""
    root = Path(folder or tempfile.gettempdir())
    removed = []
    for entry in root.iterdir() if root.is_dir() else []:
        match = TEMP_PATTERN.match(entry.name)
        if match and entry.is_dir() and not alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(str(entry))
    return removed
