"""`python -m jobs.report DIR`: copies a run's report, summary and plots from the store into DIR
and prints the report (CI publishes it as the run summary). Settings: STORAGE_URL, TASK, RUN_ID."""

from __future__ import annotations

import sys
from pathlib import Path

from common.errors import ConfigError
from common.storage import RunLayout, StorageError, Store
from jobs.settings import CommonSettings, load

FILES = ("eval/report.md", "eval/report.json", "eval/scores.png", "train/loss_curves.png", "train/metrics.jsonl", "summary.json")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m jobs.report DIR", file=sys.stderr)
        return 2
    try:
        s = load(CommonSettings)
        store, layout = Store(s.storage_url), RunLayout(s.task, s.run_id)
        folder = Path(argv[0])
        folder.mkdir(parents=True, exist_ok=True)
        found = [key for key in FILES if store.exists(f"{layout.run}/{key}")]
        for key in found:
            (folder / key.replace("/", "_")).write_bytes(store.read_bytes(f"{layout.run}/{key}"))
    except (ConfigError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    report = folder / "eval_report.md"
    print(report.read_text() if report.exists() else f"No evaluation report for run {s.run_id} ({len(found)} files found).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
