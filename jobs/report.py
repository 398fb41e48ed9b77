"""`python -m jobs.report DIR`: copies a run's report, summary and plots from the store into DIR
and prints the report, or the stage that failed and its error (CI publishes it as the run
summary). Settings: STORAGE_URL, TASK, RUN_ID."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from common.storage import RunLayout, StorageError, Store
from jobs.settings import CommonSettings, load

FILES = ("failure.json", "eval/report.md", "eval/report.json", "eval/scores.png", "train/loss_curves.png", "train/metrics.jsonl", "summary.json")


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
        failure = store.read_json(layout.failure) if store.exists(layout.failure) else None
    except (ConfigError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    report = folder / "eval_report.md"
    if report.exists():
        print(report.read_text())
    elif failure is not None:
        print(failure_text(s.run_id, failure))
    else:
        print(f"No evaluation report for run {s.run_id} ({len(found)} files found).")
    return 0


def failure_text(run_id: str, failure: dict[str, Any]) -> str:
    """The failed stage and its error (which names the logs to read) as Markdown."""
    lines = [f"## Run {run_id} failed in its {failure['stage']} stage", "", "```", str(failure["error"]), "```"]
    if failure.get("runner") == "k8s" and "kubectl" not in str(failure["error"]):
        lines += ["", "The stage's pods' logs: `kubectl -n <namespace> logs --selector ludus.dev/run-id=" + run_id + " --tail 50`"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
