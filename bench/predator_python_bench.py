"""The predator's pursuit generator against a plain-Python re-creation of the old system's
per-step loop (encode, teacher, step the flock), on the same episodes: the initial states of
`rust_gen predator trace --seed i`. Python replays each episode and must reproduce Rust's
trajectory bit for bit (the same f64 operations in the same order, docs/predator.md), so both
did the same work; then their samples/s (steps with the teacher's label) are compared.

    .venv/bin/python bench/predator_python_bench.py [--episodes 4] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "rust_gen" / "target" / "release" / "rust_gen"


def fm(x: float, y: float) -> float:
    ax, ay = abs(x), abs(y)
    return 0.96 * max(ax, ay) + 0.398 * min(ax, ay)


def scale(x: float, y: float, k: float) -> tuple[float, float]:
    return x * k, y * k


def limit(x: float, y: float, m: float) -> tuple[float, float]:
    f = fm(x, y)
    return scale(x, y, m / f) if f > m else (x, y)


def set_mag(x: float, y: float, m: float) -> tuple[float, float]:
    f = fm(x, y)
    return scale(x, y, m / f) if f > 0 else (x, y)


def steer(tx: float, ty: float, vx: float, vy: float) -> tuple[float, float]:
    qx, qy = set_mag(tx, ty, 3.5)
    return limit(qx - vx, qy - vy, 0.1)


def wrap(v: float, size: float, offset: float) -> float:
    if v > size + offset:
        return -offset
    if v < -offset:
        return size + offset
    return v


def step(state: dict, ax: float, ay: float) -> list[int]:
    """One step as docs/predator.md section 4 says, boids in place."""
    w, h, boids, pred = state["width"], state["height"], state["boids"], state["predator"]
    px, py = pred["pos"]["x"], pred["pos"]["y"]
    for i, me in enumerate(boids):
        mx, my, vx, vy = me["pos"]["x"], me["pos"]["y"], me["vel"]["x"], me["vel"]["y"]
        cx = cy = sx = sy = ux = uy = 0.0
        nc = ns = na = 0
        for j, o in enumerate(boids):
            if j == i:
                continue
            dx, dy = mx - o["pos"]["x"], my - o["pos"]["y"]
            if dx * dx + dy * dy > 3601.0:
                continue
            d = math.sqrt(dx * dx + dy * dy) + 1e-7
            if d <= 60:
                cx, cy, nc = cx + o["pos"]["x"], cy + o["pos"]["y"], nc + 1
            if 0 < d < 40:
                n = math.sqrt(dx * dx + dy * dy)
                nx, ny = (dx / n, dy / n) if n > 0 else (dx, dy)
                sx, sy, ns = sx + nx / d, sy + ny / d, ns + 1
            if 0 < d < 60:
                ux, uy, na = ux + o["vel"]["x"], uy + o["vel"]["y"], na + 1

        coh = steer(cx / nc - mx, cy / nc - my, vx, vy) if nc else (0.0, 0.0)
        sep = steer(sx / ns, sy / ns, vx, vy) if ns else (0.0, 0.0)
        ali = steer(ux / na, uy / na, vx, vy) if na else (0.0, 0.0)
        dx, dy = mx - px, my - py
        dp = math.sqrt(dx * dx + dy * dy) + 1e-7
        avoid = (0.0, 0.0)
        if dp < 80:
            f = fm(dx, dy)
            nx, ny = (dx / f, dy / f) if f > 0 else (dx, dy)
            k = (80 - dp) / 80 * 0.3
            avoid = limit(nx * k, ny * k, 0.1 * 1.5)
        ax_ = coh[0] * 1.0 + sep[0] * 2.0 + ali[0] * 1.0 + avoid[0]
        ay_ = coh[1] * 1.0 + sep[1] * 2.0 + ali[1] * 1.0 + avoid[1]
        vx, vy = limit(vx + ax_, vy + ay_, 3.5)
        me["vel"] = {"x": vx, "y": vy}
        me["pos"] = {"x": wrap(mx + vx, w, 10.0), "y": wrap(my + vy, h, 10.0)}
    vx, vy = limit(pred["vel"]["x"] + max(-1.0, min(1.0, ax)) * 0.2, pred["vel"]["y"] + max(-1.0, min(1.0, ay)) * 0.2, 2.0)
    pred["vel"] = {"x": vx, "y": vy}
    pred["pos"] = {"x": wrap(px + vx, w, 20.0), "y": wrap(py + vy, h, 20.0)}
    qx, qy = pred["pos"]["x"], pred["pos"]["y"]
    caught = [i for i, b in enumerate(boids) if math.sqrt((b["pos"]["x"] - qx) ** 2 + (b["pos"]["y"] - qy) ** 2) < 0.7 * 18.0]
    ids = [boids[i]["id"] for i in caught]
    for i in reversed(caught):
        del boids[i]
    return ids


def delta(d: float, size: float) -> float:
    if abs(d) > size / 2:
        return d - size if d > 0 else d + size
    return d


def encode_and_pursue(state: dict) -> tuple[float, float]:
    """The old loop's work per step: encode every boid, then closest pursuit on the encoding."""
    pred = state["predator"]
    w, h = state["width"], state["height"]
    tokens = [
        (
            delta(b["pos"]["x"] - pred["pos"]["x"], w) / 1000.0,
            delta(b["pos"]["y"] - pred["pos"]["y"], h) / 1000.0,
            max(-1.0, min(1.0, b["vel"]["x"] / 3.5)),
            max(-1.0, min(1.0, b["vel"]["y"] / 3.5)),
        )
        for b in state["boids"]
    ]
    best = None
    for x, y, _, _ in tokens:
        dist = math.sqrt(x * x + y * y)
        if best is None or dist < best[0]:
            best = (dist, x, y)
    if best is None or best[0] < 0.001:
        return 0.0, 0.0
    return best[1] / best[0], best[2] / best[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rows = []
    for seed in range(args.episodes):
        cmd = [str(GENERATOR), "predator", "trace", "--player", "pursuit", "--seed", str(seed), "--steps", str(args.steps)]
        trace = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        state = json.loads(json.dumps(trace["initial"]))
        started = time.perf_counter()
        for k, expected in enumerate(trace["steps"]):
            ax, ay = encode_and_pursue(state)
            caught = step(state, ax, ay)
            same = [ax, ay] == expected["action"] and caught == expected["caught"]
            if not same or state["boids"] != expected["boids"] or state["predator"] != expected["predator"]:
                raise SystemExit(f"seed {seed}, step {k}: Python and Rust differ")
        python_seconds = time.perf_counter() - started
        samples = len(trace["steps"])
        rows.append({"seed": seed, "boids": len(trace["initial"]["boids"]), "samples": samples, "python_samples_per_second": samples / python_seconds,
                     "rust_samples_per_second": samples / trace["seconds"]})  # fmt: skip
        print(f"seed {seed}: {rows[-1]['boids']} boids, {samples} steps, identical; python {rows[-1]['python_samples_per_second']:,.0f}/s, "
              f"rust {rows[-1]['rust_samples_per_second']:,.0f}/s", flush=True)  # fmt: skip
    python = sum(r["samples"] for r in rows) / sum(r["samples"] / r["python_samples_per_second"] for r in rows)
    rust = sum(r["samples"] for r in rows) / sum(r["samples"] / r["rust_samples_per_second"] for r in rows)
    report = {"episodes": rows, "python_samples_per_second": python, "rust_samples_per_second": rust, "ratio": rust / python,
              "median_ratio": statistics.median(r["rust_samples_per_second"] / r["python_samples_per_second"] for r in rows)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predator-python.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"all episodes: python {python:,.0f} samples/s, rust {rust:,.0f} samples/s (one thread each): {rust / python:,.0f}x")


if __name__ == "__main__":
    main()
