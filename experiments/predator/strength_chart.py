"""The predator network's catch rate per training run, as a chart for the README.

Reads the evaluation records of the strength runs (predator-strength-e*.json, and the full-thrust
decoding of two of them from predator-decoding-paired.json) from experiments/predator/ (or
bench/results/ for an older checkout) and writes docs/images/predator-strength.png.

    .venv/bin/python experiments/predator/strength_chart.py [--out docs/images/predator-strength.png]

Every figure is the default protocol, 200 evaluation episodes, seed 0, with its 95% interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]

# Run id -> (label, played at full thrust). The runs before e6 were evaluated on the network's
# output as it is (net-raw: today); e6 and later at full thrust in its direction (net:).
RUNS = [
    ("e1-pursuit", "imitates pursuit, 200 episodes", False),
    ("e3-rounds", "planner, 300 + 300 (2 rounds)", False),
    ("e2-planner", "planner, 600 episodes", False),
    ("e4-planner-1200", "planner, 1,200", False),
    ("e4w-near3-1200", "planner, 1,200, mirror, NEAR_WEIGHT=3", False),
    ("e4m-mirror-1200", "planner, 1,200, mirror", False),
    ("decoding:e4m-planner-1200", "planner, 1,200, mirror", True),
    ("e6-big-1200", "planner, 1,200, mirror, 64/4/4/128", True),
    ("e5-planner-3000", "planner, 3,000, mirror", False),
    ("decoding:e5-planner-3000", "planner, 3,000, mirror", True),
    ("e8-rounds-1200", "rounds after the 1,200 mirror run: round 1", True),
    ("e10-rounds3-1200", "round 2 (best)", True),
    ("e11-rounds4-1200", "round 3, 2 epochs", True),
    ("e12-rounds4b-1200", "round 3, 4 epochs", True),
]


def records_dir() -> Path:
    for folder in (ROOT / "experiments" / "predator", ROOT / "bench" / "results"):
        if (folder / "predator-decoding-paired.json").exists():
            return folder
    raise SystemExit("no predator strength records in experiments/predator/ or bench/results/")


def default_rates(folder: Path) -> tuple[dict[str, tuple[float, float, float]], float, float]:
    """(run -> (catch rate, low, high)), pursuit's and the planner's rates on the same episodes."""
    rates: dict[str, tuple[float, float, float]] = {}
    pursuit = planner = 0.0
    for run, _, _ in RUNS:
        if run.startswith("decoding:"):
            continue
        report = json.loads((folder / f"predator-strength-{run}.json").read_text())
        for row in report["results"]:
            if row["protocol"] != "default":
                continue
            rate, (low, high) = row["catch_rate"], row["catch_rate_ci95"]
            if row["opponent"] == "new model":
                rates[run] = (rate, low, high)
            elif row["opponent"] == "pursuit":
                pursuit = rate
            elif row["opponent"] == "planner":
                planner = rate
    decoding = json.loads((folder / "predator-decoding-paired.json").read_text())
    for run, record in decoding["runs"].items():
        for player in record["default"]["players"]:
            if player["player"] == "net":
                low, high = player["catch_rate_ci95"]
                rates[f"decoding:{run}"] = (player["catch_rate"], low, high)
    return rates, pursuit, planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "predator-strength.png")
    args = parser.parse_args()
    folder = records_dir()
    rates, pursuit, planner = default_rates(folder)

    fig, ax = plt.subplots(figsize=(9, 5.2), dpi=100)
    ys = list(range(len(RUNS)))[::-1]
    for y, (run, label, full) in zip(ys, RUNS, strict=True):
        rate, low, high = rates[run]
        color = "#1f6feb" if full else "#8b949e"
        ax.barh(y, rate, color=color, height=0.7)
        ax.errorbar(rate, y, xerr=[[rate - low], [high - rate]], fmt="none", ecolor="black", capsize=2, lw=1)
        ax.text(high + 0.008, y, f"{rate:.1%}", va="center", fontsize=8)
        ax.text(0.005, y, label, va="center", fontsize=8, color="white")
    for x, name, style in ((pursuit, "pursuit", ":"), (0.70, "goal 0.70", "--"), (planner, "planner (teacher)", "-")):
        ax.axvline(x, color="#d29922" if name.startswith("goal") else "black", ls=style, lw=1)
        ax.text(x, len(RUNS) - 0.35, f" {name} {x:.1%}" if not name.startswith("goal") else f" {name}", fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(0, 0.9)
    ax.set_ylim(-0.7, len(RUNS) + 0.1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("boids caught, default protocol (200 episodes, seed 0, 95% interval)")
    ax.set_title("The predator network by training run (grey: output as it is; blue: full thrust)", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"{args.out} from {folder}")


if __name__ == "__main__":
    main()
