"""The predator page in headless Chromium: the median frame time (every field's simulation, the
network and the drawing, charts included) and the network's inference time per frame, over 300
frames, with the 48/4/3/96 network: two fields of 50 boids (network and pursuit), the same with
"what the network sees" on (its cost is the difference), the bare URL's three fields (network,
pursuit, still), and one network field of 50, 120 and 200 boids, after a warm-up page; then the
attention's cost from three pairs of pages, off and on. A 1920 x 1080 canvas keeps most boids alive
while measuring. Writes bench/results/predator-web.{json,md}.
Usage: python bench/predator_web_bench.py [--frames 300] [--model FILE] (default: the shipped
network, web/predator/models/hunter.json; the speed does not depend on the weights)."""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web" / "predator"
# (fields, boids per field, attention)
CASES = [
    ("network,pursuit", 50, False),
    ("network,pursuit", 50, True),
    ("network,pursuit,still", 50, False),
    ("network", 50, False),
    ("network", 120, False),
    ("network", 200, False),
]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def measure(browser: Any, base: str, fields: str, boids: int, attention: bool, frames: int) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base}&fields={fields}&boids={boids}&seed=2&width=1920&height=1080&frames={frames}&attention={int(attention)}")
    page.wait_for_function("window.ludus && ludus.fields.length > 0 && ludus.done", timeout=600_000)
    frame, inference, left, errors = page.evaluate("[ludus.frameMs, ludus.inferenceMs, ludus.fields.map((f) => f.state.boids.length), ludus.errors]")
    page.close()
    if errors:
        raise SystemExit(f"the page failed: {errors}")
    row = {"fields": fields, "boids": boids, "attention": attention, "boids_at_end": left, "frames": len(frame)}
    # The mean as well: Chromium's timer ticks in 0.1 ms, finer differences show only in means.
    return row | {"frame_ms": statistics.median(frame), "frame_ms_mean": statistics.mean(frame), "inference_ms": statistics.median(inference)}


# The attention's cost, part by part, in one page: the network's pass and the field's drawing with
# and without it, in turn 400 times (so that a busy machine slows both alike), timed in blocks of
# 20 calls (Chromium's timer ticks in 0.1 ms).
PARTS = """(async () => {
  const { encode } = await import("./sim.js");
  const { netAction } = await import("./transformer.js");
  const { drawField } = await import("./render.js");
  const field = ludus.fields.find((f) => f.policy === "network");
  const view = ludus.views[ludus.fields.indexOf(field)];
  const obs = encode(field.state);
  const seen = new Float64Array(obs.boids.length);
  field.observe(ludus.net);
  const time = (f) => { const t = performance.now(); for (let i = 0; i < 20; i++) f(); return (performance.now() - t) / 20; };
  const out = { forward_off: [], forward_on: [], draw_off: [], draw_on: [] };
  for (let k = 0; k < 20; k++) {
    out.forward_off.push(time(() => netAction(ludus.net, obs)));
    out.forward_on.push(time(() => netAction(ludus.net, obs, seen)));
    out.draw_off.push(time(() => drawField(view.ctx, field, view.scale, false)));
    out.draw_on.push(time(() => drawField(view.ctx, field, view.scale, true)));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, median(v)]));
})()"""


def parts(browser: Any, base: str, frames: int) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base}&fields=network,pursuit&boids=50&seed=2&width=1920&height=1080&frames={frames}")
    page.wait_for_function("window.ludus && ludus.fields.length > 0 && ludus.done", timeout=600_000)
    result: dict[str, float] = page.evaluate(PARTS)
    page.close()
    return result


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--model", type=Path, default=WEB / "models" / "hunter.json")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(WEB, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("test", "tools"))
        shutil.copy(args.model, root / "bench_weights.json")
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/index.html?model=bench_weights.json"
        rows = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"])
            measure(browser, base, *CASES[0], args.frames)  # warm-up: the first page of a browser runs slower
            for fields, boids, attention in CASES:
                rows.append(measure(browser, base, fields, boids, attention, args.frames))
                print(json.dumps(rows[-1]), flush=True)
            # The attention's cost is small beside the noise of a shared machine: off and on in
            # turn, three times; the cost is the median of the three differences.
            pairs = []
            for _ in range(3):
                off, on = (measure(browser, base, "network,pursuit", 50, look, args.frames) for look in (False, True))
                pair = {"off_ms": off["frame_ms"], "on_ms": on["frame_ms"]}
                pairs.append(pair | {"off_mean_ms": off["frame_ms_mean"], "on_mean_ms": on["frame_ms_mean"]})
                print(json.dumps(pairs[-1]), flush=True)
            split = parts(browser, base, args.frames)
            print(json.dumps(split), flush=True)
            version = browser.version
            browser.close()
        server.shutdown()
    cost = statistics.median(p["on_ms"] - p["off_ms"] for p in pairs)
    cost_mean = statistics.median(p["on_mean_ms"] - p["off_mean_ms"] for p in pairs)
    statistic = f"median over {args.frames} frames"
    summary = {"chromium": version, "statistic": statistic, "attention_cost_ms": cost, "attention_cost_ms_mean": cost_mean, "rows": rows}
    summary["attention_pairs"] = pairs
    summary["attention_parts_ms"] = split  # per call, 50 boids: the network's pass and one field's drawing
    part_cost = split["forward_on"] - split["forward_off"] + split["draw_on"] - split["draw_off"]
    summary["attention_cost_ms_by_parts"] = part_cost
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predator-web.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| fields | boids per field | what the network sees | frame time (ms) | inference (ms) | frames |", "|---|---|---|---|---|---|"]
    for r in rows:
        shown = "on" if r["attention"] else "off"
        cells = [r["fields"].replace(",", " + "), r["boids"], shown, f"{r['frame_ms']:.2f}", f"{r['inference_ms']:.2f}", r["frames"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    text = f"Headless Chromium {version}, this machine, medians over {args.frames} frames (a frame: every field's step and drawing).\n\n"
    text += "\n".join(lines) + f"\n\nWhat the network sees costs {cost:.2f} ms a frame in the median, {cost_mean:.3f} ms in the mean"
    text += " (two fields of 50 boids, on minus off, the median of three pairs; Chromium's timer ticks in 0.1 ms).\n"
    text += (
        f"Part by part (50 boids, medians of blocks of 20 calls, off and on in turn): the network's pass {split['forward_off']:.3f} ms"
        f" without, {split['forward_on']:.3f} ms with; the field's drawing {split['draw_off']:.3f} ms without, {split['draw_on']:.3f} ms with:"
        f" {part_cost:.3f} ms a frame.\n"
    )
    (args.out / "predator-web.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
