"""`python -m jobs.web`: serves the predator's page (web/predator/) on 127.0.0.1 with a run's model:
STORAGE_URL and RUN_ID (TASK is the predator), PORT (default 8000). `make web RUN_ID=...`."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import tempfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common.errors import ConfigError
from common.storage import RunLayout, StorageError, Store
from jobs.settings import CommonSettings, load

WEB = Path(__file__).resolve().parent.parent / "web" / "predator"
MODEL_FILES = ("browser_weights.json", "predator_model.js")


def main() -> int:
    try:
        s = load(CommonSettings)
        if "RUN_ID" not in os.environ:
            raise ConfigError("RUN_ID is not set: name the run whose model the page should load (make web RUN_ID=...)")
        port = int(os.environ.get("PORT", "8000"))
        store, layout = Store(s.storage_url), RunLayout("predator", s.run_id)
        with tempfile.TemporaryDirectory(prefix="ludus-web-") as tmp:
            root = Path(tmp)
            shutil.copytree(WEB, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("test", "tools"))
            for name in MODEL_FILES:
                (root / name).write_bytes(store.read_bytes(layout.model_file(name)))
            server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(SimpleHTTPRequestHandler, directory=str(root)))
            print(f"http://127.0.0.1:{server.server_address[1]}/index.html?model=browser_weights.json  (run {s.run_id}; Ctrl-C stops)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    except (ConfigError, StorageError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
