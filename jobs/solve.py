"""The solve job (TASK=ur): the exact win probability of every position, computed once by
`rust_gen ur solve` and committed to `{task}/solution/` (data first, manifest last). A rerun
finds the manifest and does nothing; a killed run left nothing under the final names."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.errors import JobError
from common.processes import run_child, temp_prefix
from common.storage import Store, sha256_file, solution_keys
from jobs.generate import find_generator
from jobs.settings import SolveSettings

log = logging.getLogger(__name__)


def run_solve(s: SolveSettings) -> dict[str, Any]:
    """Solves the game with PIECES pieces a side unless the store already holds its table."""
    store = Store(s.storage_url)
    store.check()
    data_key, manifest_key = solution_keys(s.task, s.pieces)
    if store.exists(manifest_key) and store.exists(data_key):
        manifest = store.read_json(manifest_key)
        log.info("%s is already solved (%s): nothing to do", store.display(data_key), manifest.get("sha256", "?"))
        return manifest
    binary = find_generator(s.generator_bin)
    with tempfile.TemporaryDirectory(prefix=temp_prefix("solve")) as tmp:
        out = Path(tmp) / Path(data_key).name
        command = [binary, s.task, "solve", "--pieces", str(s.pieces), "--threads", str(s.threads), "--out", str(out)]
        proc = run_child(command, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise JobError(f"solving {s.task} with {s.pieces} pieces: rust_gen exited with code {proc.returncode}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        manifest = {
            "file": out.name,
            "pieces": s.pieces,
            "positions": result["positions"],
            "start_value": result["start_value"],
            "tolerance": result["tolerance"],
            "threads": result["threads"],
            "seconds": result["seconds"],
            "decisions_changed_by_f32": result["decisions_changed_by_f32"],
            "bytes": out.stat().st_size,
            "sha256": sha256_file(out),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        store.put_file(out, data_key)
        store.write_json(manifest_key, manifest)
    store.remove_leftovers(f"{s.task}/solution", f"{s.task}{s.pieces}.")
    log.info("solved %d positions in %.0f s: the first mover wins %.10f%%", manifest["positions"], manifest["seconds"], 100 * manifest["start_value"])
    print(json.dumps(manifest))
    return manifest
