"""`python -m jobs.web`: serves the predator's page (web/predator/) on 127.0.0.1:PORT (default
8000; 0 takes a free port). Without RUN_ID the page is served as it is, with the network shipped
in web/predator/models/ (hunter.json, described by hunter.meta.json); with RUN_ID (and
STORAGE_URL) the page's network is that run's, named after the run, with its catch rate when the
run was evaluated. `make web`, `make web RUN_ID=...`."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from common.storage import RunLayout, StorageError, Store
from jobs.settings import CommonSettings, load

WEB = Path(__file__).resolve().parent.parent / "web" / "predator"
MODEL_FILES = ("browser_weights.json", "predator_model.js")
SHIPPED = "models/hunter.json"
SHIPPED_META = "models/hunter.meta.json"


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files with a log line only for requests that failed (a missing file, say)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not (isinstance(code, int) and code < 400):
            super().log_request(code, size)


def run_meta(store: Store, layout: RunLayout, run_id: str) -> dict[str, Any]:
    """The page's description of a run's model: its name, and its catch rates from the run's
    evaluation report (None when the run was not evaluated)."""
    meta: dict[str, Any] = {"name": f"run {run_id}", "catch_rate_default_protocol": None, "run_id": run_id}
    meta["source"] = store.display(layout.model_file("browser_weights.json"))
    report = f"{layout.eval}/report.json"
    if store.exists(report):
        results = store.read_json(report).get("results", [])
        rates = {f"{r['protocol']}: {r['opponent']}": r["catch_rate"] for r in results}
        mine = next((r for r in results if r["protocol"] == "default" and r["opponent"] == "new model"), None)
        if mine is not None:
            meta["catch_rate_default_protocol"] = mine["catch_rate"]
            meta["episodes"] = mine["episodes"]
        meta["catch_rates"] = rates
    return meta


@contextlib.contextmanager
def site(run_id: str | None) -> Iterator[tuple[Path, str]]:
    """The folder to serve and what it holds: the page itself, or a copy whose shipped network
    is the run's (its files also at the top, where older links point)."""
    if run_id is None:
        yield WEB, f"the shipped network ({SHIPPED}, described in {SHIPPED_META})"
        return
    s = load(CommonSettings)
    store, layout = Store(s.storage_url), RunLayout("predator", s.run_id)
    with tempfile.TemporaryDirectory(prefix="ludus-web-") as tmp:
        root = Path(tmp)
        shutil.copytree(WEB, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("test", "tools"))
        for name in MODEL_FILES:
            (root / name).write_bytes(store.read_bytes(layout.model_file(name)))
        (root / SHIPPED).write_bytes((root / "browser_weights.json").read_bytes())
        (root / SHIPPED_META).write_text(json.dumps(run_meta(store, layout, s.run_id), indent=2) + "\n")
        (root / "models" / "hunter.md").write_text(f"The network of run {s.run_id}, from {store.display(layout.model)}.\n")
        yield root, f"run {s.run_id}'s network"


def main() -> int:
    # SIGTERM ends it as Ctrl-C does: the temporary copy of the page is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        port = int(os.environ.get("PORT", "8000"))
        run_id = os.environ.get("RUN_ID") or None
        with site(run_id) as (root, what):
            server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(QuietHandler, directory=str(root)))
            print(f"http://127.0.0.1:{server.server_address[1]}/  ({what}; Ctrl-C stops)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    except (ConfigError, StorageError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
