"""The sweep job: Optuna searches train settings over one run's shards.

RUN_ID names the data: its shards are generated once (as the pipeline would), then every trial
trains on them into a run of its own (`<RUN_ID>-tNNNN`), as a local process (`RUNNER=local`,
PARALLEL at a time, sharing the cores) or as a pod of an Indexed Job (`RUNNER=k8s`, PARALLEL
trials a Job). Optuna's TPE sampler picks each trial's settings (SWEEP_SPACE, or the task's),
and its pruner (SWEEP_PRUNER) stops hopeless trials from the validation loss of each epoch,
which the trial writes to its metrics in the store: the sweep reads them there (no database) and
writes the trial's stop marker (`train/stop.json`) when the pruner says so.

The study lives in the store: a record per trial (sweep/trials/), written before the trial starts
and again when it ends. A rerun with the same RUN_ID rebuilds the study from the finished trials
(`add_trial`), runs the trials that were cut off again with their settings (their own
checkpoints resume them), and never runs a finished trial again. The sweep holds the run's lease,
so two sweeps, or a sweep and a pipeline, never work on one run at once.

At the end: sweep/trials.csv and report.md (the best trial first), Optuna's charts (history,
importances, parallel coordinates), the best trial's model through the normal evaluation and
promotion, and the winning settings as a `make job` line.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import optuna
from pydantic import BaseModel

from common.errors import ConfigError, JobError
from common.processes import child, temp_prefix
from common.storage import RunLayout, Store, read_metrics
from jobs.pipeline import child_env, error_lines, run_stage, stage, stage_actions
from jobs.runs import Lease, TrialRecord, check_or_write_run_json, trial_key, trial_run_id
from jobs.settings import SweepSettings, settings_class
from jobs.space import Dimension, check_space, parse_space
from jobs.tasks import get_task

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # how soon a finished trial's place is taken
WATCH_SECONDS = 2.0  # how often the trials' epochs are read from the store
FINISHED = {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED, "failed": optuna.trial.TrialState.FAIL}


def search_space(s: SweepSettings) -> dict[str, Dimension]:
    """SWEEP_SPACE, or the task's default, checked against the train settings' bounds."""
    spec = get_task(s.task)
    variable = "SWEEP_SPACE" if s.sweep_space.strip() else f"the default space of TASK={s.task}"
    space = parse_space(s.sweep_space or spec.sweep_space, variable)
    train = settings_class("train", s.task)
    base = {k: v for k, v in s.model_dump().items() if k in train.model_fields}
    check_space(space, train, spec.settings.get("train", BaseModel), base, variable)
    if s.sweep_metric == "strength" and spec.strength is None:
        raise ConfigError(f"SWEEP_METRIC=strength: TASK={s.task} declares no strength figure; use val_loss")
    return space


def readable(d: Dimension, value: Any) -> Any:
    """A sampled float to 4 significant digits (what the trial trains with, and what the make
    line says), kept inside its range."""
    if not isinstance(value, float) or d.choices or d.integer:
        return value
    assert d.low is not None and d.high is not None
    return min(d.high, max(d.low, float(f"{value:.4g}")))


def space_text(space: dict[str, Dimension]) -> str:
    return ",".join(d.text() for d in space.values())


def distribution(d: Dimension) -> optuna.distributions.BaseDistribution:
    if d.choices:
        return optuna.distributions.CategoricalDistribution(d.choices)
    assert d.low is not None and d.high is not None
    if d.integer:
        return optuna.distributions.IntDistribution(int(d.low), int(d.high), log=d.log)
    return optuna.distributions.FloatDistribution(d.low, d.high, log=d.log)


def new_study(s: SweepSettings) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the charts are "experimental" since v2.2
    pruner: optuna.pruners.BasePruner = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "halving": optuna.pruners.SuccessiveHalvingPruner(),
        "none": optuna.pruners.NopPruner(),
    }[s.sweep_pruner if s.sweep_metric == "val_loss" else "none"]  # the epochs report losses, not strength
    sampler = optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=min(10, max(2, s.trials // 2)))
    direction = optuna.study.StudyDirection.MINIMIZE if s.sweep_metric == "val_loss" else optuna.study.StudyDirection.MAXIMIZE
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)


def read_records(store: Store, layout: RunLayout) -> list[TrialRecord]:
    keys = sorted(k for k in store.list(f"{layout.run}/sweep/trials") if k.endswith(".json"))
    return [TrialRecord.model_validate(store.read_json(k)) for k in keys]


def rebuild(study: optuna.Study, records: list[TrialRecord], space: dict[str, Dimension]) -> list[TrialRecord]:
    """Adds the finished trials to the study; returns the ones cut off (to run again)."""
    dists = {name: distribution(d) for name, d in space.items()}
    cut_off = []
    for record in records:
        if record.state not in FINISHED:
            cut_off.append(record)
            continue
        if set(record.params) != set(space) or any(not space[n].holds(v) for n, v in record.params.items()):
            raise ConfigError(
                f"trial {record.number} was run with {record.params}, outside the space {space_text(space)}; use a new RUN_ID for a new space"
            )
        study.add_trial(
            optuna.trial.create_trial(
                params=record.params,
                distributions=dists,
                value=record.value if record.state == "complete" else None,
                intermediate_values=record.intermediate,
                state=FINISHED[record.state],
            )
        )
    return cut_off


class Sweep:
    """The trials of one sweep: asks Optuna for settings, records and starts trials, watches
    their epochs for the pruner and tells Optuna how each ended."""

    def __init__(self, s: SweepSettings, store: Store, layout: RunLayout, space: dict[str, Dimension]) -> None:
        self.s, self.store, self.layout, self.space = s, store, layout, space
        self.dists = {name: distribution(d) for name, d in space.items()}
        self.study = new_study(s)
        records = read_records(store, layout)
        self.rerun = rebuild(self.study, records, space)
        self.numbers = len(records)  # the next trial's number
        self.open: dict[int, tuple[optuna.trial.Trial, TrialRecord, float]] = {}  # running: trial, record, start
        if records:
            done = len(records) - len(self.rerun)
            print(f"sweep {s.run_id}: {done} trial(s) finished earlier, {len(self.rerun)} cut off (run again)", flush=True)

    @property
    def remaining(self) -> int:
        """Trials still to start: cut-off ones first, then new ones up to TRIALS."""
        return len(self.rerun) + max(0, self.s.trials - self.numbers)

    def start_one(self) -> TrialRecord:
        """The next trial's record, written before it runs."""
        if self.rerun:
            record = self.rerun.pop(0)
            self.study.enqueue_trial(record.params)
        else:
            record = TrialRecord(number=self.numbers, run_id=trial_run_id(self.s.run_id, self.numbers), params={})
            self.numbers += 1
        trial = self.study.ask(self.dists)
        params = {name: readable(self.space[name], value) for name, value in trial.params.items()}
        record = record.model_copy(update={"params": params, "state": "running", "intermediate": {}})
        self.store.write_json(trial_key(self.layout, record.number), record.model_dump(mode="json"))
        self.open[record.number] = (trial, record, time.perf_counter())
        return record

    def watch(self) -> str:
        """Reports new epochs of the open trials to the pruner; asks a hopeless one to stop.
        Returns a status line."""
        lines = []
        for number, (trial, record, _) in self.open.items():
            layout = RunLayout(self.s.task, record.run_id)
            metrics = read_metrics(self.store, layout)
            for m in metrics:
                if m["epoch"] not in record.intermediate:
                    record.intermediate[m["epoch"]] = m["val_loss"]
                    trial.report(m["val_loss"], m["epoch"])
                    if trial.should_prune() and not self.store.exists(layout.stop):
                        self.store.write_json(layout.stop, {"by": "sweep", "epoch": m["epoch"], "reason": f"pruned ({self.s.sweep_pruner})"})
                        print(f"trial {number}: pruned after epoch {m['epoch']} (val loss {m['val_loss']:.4f})", flush=True)
            best = min(record.intermediate.values(), default=math.nan)
            lines.append(f"trial {number}: epoch {len(record.intermediate)}, best val {best:.4f}")
        return "; ".join(lines)

    def end(self, number: int, ok: bool, error: str = "") -> TrialRecord:
        """Tells Optuna how the trial ended and records it."""
        self.watch()  # the last epochs
        trial, record, started = self.open.pop(number)
        layout = RunLayout(self.s.task, record.run_id)
        value = min(record.intermediate.values(), default=None)
        if ok and self.s.sweep_metric == "strength":
            value = self.strength(record)
        planned = int(record.params.get("epochs", self.s.epochs))
        cut_short = self.store.exists(layout.stop) and len(record.intermediate) < planned
        state = "failed" if not ok or value is None else "pruned" if cut_short else "complete"
        if state == "complete":
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=FINISHED[state])
        record = record.model_copy(
            update={
                "state": state,
                "value": value,
                "seconds": round(time.perf_counter() - started, 1),
                "epochs": len(record.intermediate),
                "error": error,
            }
        )
        self.store.write_json(trial_key(self.layout, number), record.model_dump(mode="json"))
        print(
            f"trial {number}: {state}" + (f", {self.s.sweep_metric} {value:.4f}" if value is not None else "") + (f" ({error})" if error else ""),
            flush=True,
        )
        return record

    def strength(self, record: TrialRecord) -> float:
        """Evaluates the trial's model (SWEEP_METRIC=strength) and reads the task's figure."""
        spec = get_task(self.s.task)
        assert spec.strength is not None
        evaluate_trial(self.s, record.run_id)
        report = self.store.read_json(f"{RunLayout(self.s.task, record.run_id).eval}/report.json")
        return spec.strength[1](report)


def evaluate_trial(s: SweepSettings, run_id: str, api: Any = None) -> None:
    """The evaluate stage on a trial's run (which promotes it if it beats the champion)."""
    if s.runner == "k8s":
        from jobs import cluster

        cluster.run_stage_on_cluster(s.model_copy(update={"run_id": run_id}), "evaluate", api or cluster.batch_api())
    else:
        run_stage(s, "evaluate", run_id=run_id)


def run_locally(sweep: Sweep) -> None:
    """PARALLEL trial processes at a time, the cores shared out; a new one starts as one ends."""
    s = sweep.s
    threads = max(1, (os.cpu_count() or 1) // s.parallel)
    running: dict[int, subprocess.Popen[bytes]] = {}
    next_watch = 0.0
    with tempfile.TemporaryDirectory(prefix=temp_prefix("sweep")) as logs, ExitStack() as children:
        while sweep.remaining or running:
            while sweep.remaining and len(running) < s.parallel:
                record = sweep.start_one()
                env = child_env(s, sweep_trial=record.number, train_processes=1, omp_num_threads=threads)
                with open(Path(logs) / f"{record.number}.log", "wb") as log_file:
                    running[record.number] = children.enter_context(child(stage("trial"), env=env, stderr=log_file))
                print(f"trial {record.number}: started, {', '.join(f'{k.upper()}={v}' for k, v in record.params.items())}", flush=True)
            time.sleep(POLL_SECONDS)
            if time.monotonic() >= next_watch:
                sweep.watch()
                next_watch = time.monotonic() + WATCH_SECONDS
            for number, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[number]
                said = "" if proc.returncode == 0 else error_lines((Path(logs) / f"{number}.log").read_text(errors="replace"))
                sweep.end(number, proc.returncode == 0, said)


def run_on_cluster(sweep: Sweep, api: Any) -> None:
    """Each batch of up to PARALLEL trials as one Indexed Job of the trainer image."""
    from jobs import cluster

    while sweep.remaining:
        batch = [sweep.start_one() for _ in range(min(sweep.s.parallel, sweep.remaining))]
        ok: dict[int, bool] = {}
        for numbers in consecutive([r.number for r in batch]):  # an Indexed Job numbers its pods from one trial on
            ok |= cluster.run_trials_on_cluster(sweep.s, numbers, api, sweep.watch)
        for record in batch:
            sweep.end(record.number, ok.get(record.number, False), "" if ok.get(record.number) else "its pod failed (kubectl logs)")


def consecutive(numbers: list[int]) -> list[list[int]]:
    """[2, 3, 7] -> [[2, 3], [7]]."""
    groups: list[list[int]] = []
    for n in sorted(numbers):
        if groups and groups[-1][-1] == n - 1:
            groups[-1].append(n)
        else:
            groups.append([n])
    return groups


def run_sweep(s: SweepSettings, api: Any = None) -> dict[str, Any]:
    store = Store(s.storage_url)
    layout = RunLayout(s.task, s.run_id)
    space = search_space(s)  # a bad space stops the sweep before any work
    if s.rounds > 1:
        raise ConfigError(f"ROUNDS={s.rounds}: a sweep trains on one round's shards; unset ROUNDS")
    actions = stage_actions(s, store, layout, api)
    store.check()
    with Lease(store, layout):
        check_or_write_run_json(store, layout, s)
        print(
            f"sweep {s.run_id}: {s.trials} trials, {s.parallel} at a time ({s.runner}), {s.sweep_metric}; space {space_text(space)}",
            flush=True,
        )
        print("== generate (once, for every trial)", flush=True)
        actions["generate"](0)
        print("== trials", flush=True)
        sweep = Sweep(s, store, layout, space)
        if s.runner == "k8s":
            from jobs import cluster

            run_on_cluster(sweep, api or cluster.batch_api())
        else:
            run_locally(sweep)
        records = read_records(store, layout)
        best = best_record(records, s.sweep_metric)
        write_report(store, layout, s, records, best, sweep.study)
        if s.sweep_metric == "val_loss":
            print(f"== evaluate the best trial ({best.run_id})", flush=True)
            evaluate_trial(s, best.run_id, api)
    line = make_line(s, best)
    print(f"\nbest trial {best.number} ({s.sweep_metric} {best.value:.4f}); its settings:\n{line}")
    return {"run_id": s.run_id, "best_trial": best.number, "best_run_id": best.run_id, "value": best.value, "params": best.params, "make": line}


def best_record(records: list[TrialRecord], metric: str) -> TrialRecord:
    complete = [r for r in records if r.state == "complete" and r.value is not None]
    if not complete:
        raise JobError(f"no trial of {len(records)} completed: see the trials' errors in sweep/trials.csv")
    return ranked(complete, metric)[0]


def ranked(records: list[TrialRecord], metric: str) -> list[TrialRecord]:
    """Completed trials best first, then pruned ones (by their best loss), then failed ones."""
    order = {"complete": 0, "pruned": 1, "failed": 2, "running": 3}

    def key(r: TrialRecord) -> tuple[int, float]:
        value = r.value if r.value is not None else math.inf
        return order.get(r.state, 4), -value if metric == "strength" and r.state == "complete" else value

    return sorted(records, key=key)


def write_report(store: Store, layout: RunLayout, s: SweepSettings, records: list[TrialRecord], best: TrialRecord, study: optuna.Study) -> None:
    rows = ranked(records, s.sweep_metric)
    names = sorted({n for r in rows for n in r.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "state", s.sweep_metric, "epochs_run", "seconds", "run_id", *names, "error"])
    for r in rows:
        writer.writerow(
            [
                r.number,
                r.state,
                "" if r.value is None else f"{r.value:.6g}",
                r.epochs,
                r.seconds,
                r.run_id,
                *(r.params.get(n, "") for n in names),
                r.error,
            ]
        )
    store.write_bytes(f"{layout.run}/sweep/trials.csv", buffer.getvalue().encode())
    lines = [
        f"# Sweep {s.run_id} ({s.task})",
        "",
        f"{len(records)} trials, {s.parallel} at a time ({s.runner}); metric {s.sweep_metric}; pruner {s.sweep_pruner}.",
        "",
    ]
    lines += [f"Best: trial {best.number} ({best.run_id}), {s.sweep_metric} {best.value:.4f}: `{make_line(s, best)}`", ""]
    lines += ["| trial | state | " + s.sweep_metric + " | epochs run | seconds | " + " | ".join(n.upper() for n in names) + " |"]
    lines += ["|---" * (5 + len(names)) + "|"]
    for r in rows:
        value = "" if r.value is None else f"{r.value:.4f}"
        lines.append(
            f"| {r.number} | {r.state} | {value} | {r.epochs} | {r.seconds:.0f} | " + " | ".join(str(r.params.get(n, "")) for n in names) + " |"
        )
    lines += ["", "Charts: history.png (the optimisation history), importances.png, parallel.png (parallel coordinates)."]
    store.write_bytes(f"{layout.run}/sweep/report.md", ("\n".join(lines) + "\n").encode())
    write_charts(store, layout, study)


def write_charts(store: Store, layout: RunLayout, study: optuna.Study) -> None:
    """Optuna's own matplotlib charts; one that its data cannot make (importances need two
    completed trials with different settings) is left out with a log line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as charts

    plots: dict[str, Callable[[], Any]] = {
        "history": lambda: charts.plot_optimization_history(study),
        "importances": lambda: charts.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator()),
        "parallel": lambda: charts.plot_parallel_coordinate(study),
    }
    for name, draw in plots.items():
        try:
            ax = draw()
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            log.warning("sweep/%s.png: not drawn (%s)", name, e)
            continue
        figure = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        store.write_bytes(f"{layout.run}/sweep/{name}.png", buffer.getvalue())


def make_line(s: SweepSettings, best: TrialRecord) -> str:
    """The `make job` line that trains the winning recipe on a run of its own."""
    settings = {"TASK": s.task, "GAMES": s.games, **{k.upper(): v for k, v in best.params.items()}}
    return "make job " + " ".join(f"{k}={v}" for k, v in settings.items())
