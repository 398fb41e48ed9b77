"""`python -m jobs <generate|train|evaluate|pipeline|solve|sweep|trial>`: every setting comes from the environment;
`--help` lists them with their defaults (for TASK as set, else the default task)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from common.errors import ConfigError, JobError
from common.processes import Terminated, raise_on_sigterm, sweep_temp_folders
from common.storage import StorageError
from jobs.settings import describe, load_job, settings_class
from jobs.tasks import DEFAULT_TASK, REGISTRY

JOBS: dict[str, str] = {
    "generate": "write one shard of teacher episodes (SHARD_INDEX) to the store",
    "train": "wait for all shards, train, checkpoint and export the model",
    "evaluate": "play the new model against the task's opponents and promote it if it is better",
    "pipeline": "generate, train and evaluate one run (RUNNER=local: processes on this machine)",
    "solve": "solve the game exactly (TASK=ur) into {task}/solution/ in the store, once",
    "sweep": "search train settings with Optuna over one run's shards (TRIALS, PARALLEL, SWEEP_SPACE)",
    "trial": "train one trial of a sweep (the sweep starts it)",
}


def help_task() -> str:
    """The task whose settings --help lists: TASK if it names one, else the default."""
    task = os.environ.get("TASK", DEFAULT_TASK).lower()
    return task if task in REGISTRY else DEFAULT_TASK


def settings_table(job: str) -> str:
    task = help_task()
    rows = describe(settings_class(job, task))
    width = max(len(name) for name, _, _ in rows)
    lines = [f"environment variables for TASK={task} (default, meaning):"]
    lines += [f"  {name:<{width}}  {default:<12} {meaning}" for name, default, meaning in rows]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs", description="ludus jobs; settings come from environment variables")
    sub = p.add_subparsers(dest="job", required=True, metavar="{" + ",".join(JOBS) + "}")
    for name, help_text in JOBS.items():
        sub.add_parser(name, help=help_text, description=help_text, epilog=settings_table(name), formatter_class=argparse.RawDescriptionHelpFormatter)
    return p


def action(job: str) -> Callable[[Any], Any]:
    """The job's entry point, imported on demand: generate must not pay for importing torch."""
    module_name, function = {
        "generate": ("jobs.generate", "run_generate"),
        "train": ("jobs.train", "run_train"),
        "evaluate": ("jobs.evaluate", "run_evaluate"),
        "pipeline": ("jobs.pipeline", "run_pipeline"),
        "solve": ("jobs.solve", "run_solve"),
        "sweep": ("jobs.sweep", "run_sweep"),
        "trial": ("jobs.trial", "run_trial"),
    }[job]
    return getattr(importlib.import_module(module_name), function)


def run(job: str) -> Any:
    settings = load_job(job)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    result = action(job)(settings)
    if job == "sweep":
        print(json.dumps(result))
    if job == "pipeline":
        from jobs.pipeline import print_summary

        print_summary(result)
        print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> int:
    code = run_main(argv)
    if "TORCHELASTIC_RUN_ID" in os.environ:
        # A rank of a torchrun training ends here, its output flushed, without the interpreter's
        # teardown: there, gloo's threads can abort a finished process ("terminate called
        # without an active exception", SIGABRT), which would report finished work as failed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def run_main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    raise_on_sigterm()
    sweep_temp_folders()  # what jobs killed with -9 left behind
    try:
        run(args.job)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (StorageError, JobError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as e:
        print("interrupted: committed work is kept; rerun with the same RUN_ID to resume", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
