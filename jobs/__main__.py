"""`python -m jobs <generate|train|evaluate|pipeline>`: every setting comes from the environment;
`--help` lists them with their defaults."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from pydantic_settings import BaseSettings

from jobs.errors import JobError
from jobs.settings import ConfigError, EvaluateSettings, GenerateSettings, PipelineSettings, TrainSettings, describe, load
from jobs.storage import StorageError

JOBS: dict[str, tuple[type[BaseSettings], str]] = {
    "generate": (GenerateSettings, "write one shard of teacher games (SHARD_INDEX) to the store"),
    "train": (TrainSettings, "wait for all shards, train, checkpoint and export the networks"),
    "evaluate": (EvaluateSettings, "play the new model against the teacher and promote it if it is better"),
    "pipeline": (PipelineSettings, "generate, train and evaluate one run (RUNNER=local: processes on this machine)"),
}


def settings_table(cls: type[BaseSettings]) -> str:
    rows = describe(cls)
    width = max(len(name) for name, _, _ in rows)
    lines = ["environment variables (default, meaning):"]
    lines += [f"  {name:<{width}}  {default:<12} {meaning}" for name, default, meaning in rows]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs", description="ludus jobs; settings come from environment variables")
    sub = p.add_subparsers(dest="job", required=True, metavar="{" + ",".join(JOBS) + "}")
    for name, (cls, help_text) in JOBS.items():
        sub.add_parser(name, help=help_text, description=help_text, epilog=settings_table(cls), formatter_class=argparse.RawDescriptionHelpFormatter)
    return p


def action(job: str) -> Callable[[Any], Any]:
    """The job's entry point, imported on demand: generate must not pay for importing torch."""
    module_name, function = {
        "generate": ("jobs.generate", "run_generate"),
        "train": ("jobs.train", "run_train"),
        "evaluate": ("jobs.evaluate", "run_evaluate"),
        "pipeline": ("jobs.pipeline", "run_pipeline"),
    }[job]
    return getattr(importlib.import_module(module_name), function)


def run(job: str) -> Any:
    settings = load(JOBS[job][0])
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)  # type: ignore[attr-defined]
    result = action(job)(settings)
    if job == "pipeline":
        from jobs.pipeline import print_summary

        print_summary(result)
        print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run(args.job)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (StorageError, JobError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: committed work is kept; rerun with the same RUN_ID to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
