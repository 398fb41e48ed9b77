"""The evaluate job: the new model against the teacher at several depths and the current
champion, a report with 95% intervals, and promotion when the model is better than the champion."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jobs.errors import JobError
from jobs.generate import find_generator
from jobs.settings import EvaluateSettings
from jobs.storage import RunLayout, Store

log = logging.getLogger(__name__)


def play(binary: str, a: str, b: str, games: int, seed: int) -> dict[str, Any]:
    cmd = [binary, "ur", "match", "--a", a, "--b", b, "--games", str(games), "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise JobError(f"rust_gen ur match --b {b} exited with code {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def fetch_champion(store: Store, layout: RunLayout, folder: Path) -> tuple[dict[str, Any], Path] | None:
    """The current champion's record and a local copy of its weights, unless it is this run."""
    if not store.exists(layout.champion):
        return None
    champion = store.read_json(layout.champion)
    if champion.get("run_id") == layout.run_id:
        return None
    path = folder / "champion.json"
    path.write_bytes(store.read_bytes(champion["weights"]))
    return champion, path


def decide(results: list[dict[str, Any]], champion: dict[str, Any] | None, threshold: float) -> tuple[bool, str]:
    if champion is None:
        return True, "no champion yet"
    against = next(r for r in results if r["opponent"] == "champion")
    lower = against["a_win_rate_ci95"][0]
    if lower > threshold:
        return True, f"lower 95% bound {lower:.3f} against champion {champion['run_id']} is above {threshold}"
    return False, f"lower 95% bound {lower:.3f} against champion {champion['run_id']} is not above {threshold}"


def markdown(run_id: str, player: str, results: list[dict[str, Any]], promoted: bool, reason: str) -> str:
    lines = [
        f"# Evaluation of run {run_id}",
        "",
        f"The new model plays as `{player}:`; seats alternate; intervals are 95% Wilson intervals.",
        "",
        "| opponent | games | wins | losses | unfinished | win rate | 95% interval | us/move (model) | us/move (opponent) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lo, hi = r["a_win_rate_ci95"]
        lines.append(
            f"| {r['label']} | {r['games']} | {r['a_wins']} | {r['b_wins']} | {r['unfinished']} | {r['a_win_rate']:.1%} "
            f"| {lo:.1%} - {hi:.1%} | {r['a_us_per_move']:.1f} | {r['b_us_per_move']:.1f} |"
        )
    lines += ["", f"**{'Promoted' if promoted else 'Not promoted'}**: {reason}.", "", "![win rates](win_rates.png)", ""]
    return "\n".join(lines)


def chart(run_id: str, results: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in results]
    rates = [r["a_win_rate"] for r in results]
    lows = [r["a_win_rate"] - r["a_win_rate_ci95"][0] for r in results]
    highs = [r["a_win_rate_ci95"][1] - r["a_win_rate"] for r in results]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(results) + 1.6))
    ax.errorbar(rates, range(len(results)), xerr=[lows, highs], fmt="o", capsize=5, color="tab:blue")
    ax.axvline(0.5, color="grey", linestyle="--", label="50%")
    ax.set_yticks(range(len(results)), labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate of the new model (95% Wilson interval)")
    ax.set_title(f"run {run_id}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def run_evaluate(s: EvaluateSettings) -> dict[str, Any]:
    store = Store(s.storage_url)
    store.check()
    layout = RunLayout(s.task, s.run_id)
    if not store.exists(layout.weights):
        raise JobError(f"{store.display(layout.weights)} does not exist: run the train job for RUN_ID={s.run_id} first")
    binary = find_generator(s.generator_bin)
    with tempfile.TemporaryDirectory(prefix="ludus-eval-") as tmp:
        model = Path(tmp) / "model.json"
        model.write_bytes(store.read_bytes(layout.weights))
        fetched = fetch_champion(store, layout, Path(tmp))
        opponents = [(o, o) for o in EvaluateSettings.opponents_of(s.eval_opponents)]
        if fetched:
            opponents.append(("champion", f"value:{fetched[1]}"))
        results = []
        for label, spec in opponents:
            print(f"evaluate: {s.eval_games} games against {label}", flush=True)
            result = play(binary, f"{s.eval_player}:{model}", spec, s.eval_games, s.seed)
            name = f"champion ({fetched[0]['run_id']})" if label == "champion" and fetched else label
            results.append({**result, "opponent": label, "label": name, "a": f"{s.eval_player}:model", "b": label})
    champion = fetched[0] if fetched else None
    promoted, reason = decide(results, champion, s.promotion_threshold)
    summary = "; ".join(f"{r['label']} {r['a_win_rate']:.1%}" for r in results) + f"; {'promoted' if promoted else 'not promoted'}"
    report = {"run_id": s.run_id, "player": s.eval_player, "results": results, "promoted": promoted, "reason": reason, "summary": summary}
    store.write_bytes(f"{layout.eval}/win_rates.png", chart(s.run_id, results))
    text = markdown(s.run_id, s.eval_player, results, promoted, reason)
    store.write_bytes(f"{layout.eval}/report.md", text.encode())
    store.write_json(f"{layout.eval}/report.json", report)
    if promoted:
        store.write_json(
            layout.champion,
            {
                "run_id": s.run_id,
                "weights": layout.weights,
                "compat_weights": layout.compat_weights,
                "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "reason": reason,
                "previous": champion,
            },
        )
    print(text, flush=True)
    return report
