"""Child processes that die with their parent: a killed job (SIGTERM, or kill -9, which no
handler sees) never leaves a trainer or a generator running on behind it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import sys
import tempfile
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
    subprocess.run killing its child) runs before the process ends."""


def raise_on_sigterm() -> None:
    def handler(signum: int, _frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


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
