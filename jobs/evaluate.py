"""The evaluate job: the task's evaluator plays the new model against its opponents and the
current champion; this writes the report (JSON, Markdown, a chart with 95% intervals) and
promotes the model when it beats the champion by the task's margin."""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.errors import JobError
from common.processes import temp_prefix
from common.run import RUN_ID_PATTERN
from common.storage import RunLayout, Store
from jobs.generate import find_generator
from jobs.runs import check_run_identity
from jobs.settings import EvaluateSettings
from jobs.tasks import Evaluation, get_task

log = logging.getLogger(__name__)


def read_champion(store: Store, layout: RunLayout) -> dict[str, Any] | None:
    """The current champion's record, if there is one; its run id must be a valid one."""
    if not store.exists(layout.champion):
        return None
    champion = store.read_json(layout.champion)
    run_id = champion.get("run_id") if isinstance(champion, dict) else None
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise JobError(f"{store.display(layout.champion)}: field 'run_id' is {run_id!r}, not a run id; fix or delete the file")
    return champion


def fetch_champion(store: Store, layout: RunLayout, champion: dict[str, Any], folder: Path) -> Path:
    """A local copy of the champion's weights. They are read from where its run keeps them, never
    from a path in champion.json, which could point anywhere."""
    path = folder / "champion.json"
    path.write_bytes(store.read_bytes(RunLayout(layout.task, champion["run_id"]).weights))
    return path


def promote(store: Store, layout: RunLayout, played: dict[str, Any] | None, record: dict[str, Any], settle_seconds: float = 1.0) -> str | None:
    """Writes champion.json unless the champion changed since this evaluation read it (another
    evaluation promoted its run meanwhile); returns why it did not, or None. Object stores have
    no portable compare-and-swap, so this re-reads before writing and reads back after a pause:
    of two promotions at once, the one whose record survives is the champion, and the other says so."""
    now = read_champion(store, layout)
    if now != played:
        was = played["run_id"] if played else "no champion"
        return f"the champion changed to run {now['run_id'] if now else None} while this evaluation played {was}; rerun evaluate to play it"
    store.write_json(layout.champion, record)
    time.sleep(settle_seconds)
    back = read_champion(store, layout)
    if back != json.loads(json.dumps(record)):
        return f"run {back['run_id'] if back else None} was promoted at the same time and its record stands; rerun evaluate to play it"
    return None


def decide(evaluation: Evaluation, champion: dict[str, Any] | None, threshold: float) -> tuple[bool, str]:
    if champion is None:
        return True, "no champion yet"
    lower = evaluation.champion_bound
    if lower is None:
        raise JobError("the evaluator played no match against the champion")
    verdict = "is above" if lower > threshold else "is not above"
    return lower > threshold, f"lower 95% bound {lower:.3f} against champion {champion['run_id']} {verdict} {threshold}"


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, Any]]) -> list[str]:
    headers = [name for name, _ in columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in rows]


def markdown(run_id: str, evaluation: Evaluation, promoted: bool, reason: str) -> str:
    lines = [f"# Evaluation of run {run_id}", "", evaluation.intro, "", *markdown_table(evaluation.results, evaluation.columns)]
    lines += ["", f"**{'Promoted' if promoted else 'Not promoted'}**: {reason}.", "", "![scores](scores.png)", ""]
    for table in evaluation.tables:
        lines += [f"## {table.title}", "", table.intro, "", *markdown_table(table.rows, table.columns), ""]
    return "\n".join(lines)


def chart(run_id: str, evaluation: Evaluation) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = evaluation.results
    scores = [r[evaluation.score] for r in results]
    lows = [r[evaluation.score] - r[evaluation.interval][0] for r in results]
    highs = [r[evaluation.interval][1] - r[evaluation.score] for r in results]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(results) + 1.6))
    ax.errorbar(scores, range(len(results)), xerr=[lows, highs], fmt="o", capsize=5, color="tab:blue")
    ax.axvline(evaluation.reference, color="grey", linestyle="--", label=evaluation.reference_label)
    ax.set_yticks(range(len(results)), [r["label"] for r in results])
    ax.set_xlim(min(0.0, *[r[evaluation.interval][0] for r in results]), max(1.0, *[r[evaluation.interval][1] for r in results]))
    ax.set_xlabel(evaluation.score_label)
    ax.set_title(f"run {run_id}")
    ax.legend(loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def run_evaluate(s: EvaluateSettings) -> dict[str, Any]:
    store = Store(s.storage_url)
    store.check()
    layout = RunLayout(s.task, s.run_id)
    check_run_identity(store, layout, s, "evaluate")
    store.remove_leftovers(s.task, "champion.json")  # what a promotion killed mid-write left
    task = get_task(s.task)
    if not store.exists(layout.weights):
        raise JobError(f"{store.display(layout.weights)} does not exist: run the train job for RUN_ID={s.run_id} first")
    binary = find_generator(s.generator_bin)
    current = read_champion(store, layout)
    # Re-evaluating the champion's own run (a resumed pipeline does) plays no match against
    # itself and leaves champion.json, and its promotion history, as it is.
    is_champion = current is not None and current["run_id"] == s.run_id
    champion = None if is_champion else current
    with tempfile.TemporaryDirectory(prefix=temp_prefix("eval")) as tmp:
        model = Path(tmp) / "model.json"
        model.write_bytes(store.read_bytes(layout.weights))
        champion_weights = fetch_champion(store, layout, champion, Path(tmp)) if champion else None
        inputs = task.evaluator_inputs(s, store, Path(tmp)) if task.evaluator_inputs else []
        assert task.evaluate is not None, "checked by jobs.settings.load_job"
        evaluation = task.evaluate(s, binary, model, champion_weights, inputs)
    for result in evaluation.results:
        if result["opponent"] == "champion" and champion:
            result["label"] = result["label"].replace("champion", f"champion ({champion['run_id']})", 1)
    threshold: float = s.promotion_threshold  # type: ignore[attr-defined]  # every task's evaluate settings have one
    if is_champion:
        promoted, reason = False, f"run {s.run_id} is the current champion already"
    else:
        promoted, reason = decide(evaluation, champion, threshold)
    if promoted:  # first: the report must never say "promoted" before champion.json does
        artifacts = {Path(name).stem: layout.model_file(name) for name in task.artifacts}
        record = {
            "run_id": s.run_id,
            **artifacts,
            "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reason": reason,
            "previous": champion,
        }
        refused = promote(store, layout, current, record)
        if refused:
            promoted, reason = False, f"{reason}, but {refused}"
    summary = "; ".join(f"{r['label']} {r[evaluation.score]:.1%}" for r in evaluation.results)
    summary += "; champion already" if is_champion else f"; {'promoted' if promoted else 'not promoted'}"
    report = {
        "run_id": s.run_id,
        "player": evaluation.player,
        "score": evaluation.score,  # which key of each result is the score, and which its 95% interval
        "interval": evaluation.interval,
        "results": evaluation.results,
        "promoted": promoted,
        "reason": reason,
        "summary": summary,
        **{table.key: table.rows for table in evaluation.tables},
    }
    store.write_bytes(f"{layout.eval}/scores.png", chart(s.run_id, evaluation))
    text = markdown(s.run_id, evaluation, promoted, reason)
    store.write_bytes(f"{layout.eval}/report.md", text.encode())
    store.write_json(f"{layout.eval}/report.json", report)
    print(text, flush=True)
    return report
