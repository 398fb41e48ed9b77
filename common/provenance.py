"""Where an artifact came from: the source revision."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_revision() -> str:
    """GIT_REVISION (set in images, which hold no .git), else `git rev-parse HEAD`, else unknown."""
    if os.environ.get("GIT_REVISION"):
        return os.environ["GIT_REVISION"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
