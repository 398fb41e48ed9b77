"""The predator page in headless Chromium: median frame time (simulation, network, drawing) and
network inference time per frame with the 48/4/3/96 network at 50, 120 and 200 boids. Writes
bench/results/predator-web.{json,md}. Usage: python bench/predator_web_bench.py [--frames 300] [--model FILE]
(default: a random network of the default size; the speed does not depend on the weights)."""

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def random_model(path: Path) -> None:
    import torch

    from trainer.tasks.predator.export import to_browser
    from trainer.tasks.predator.model import PredatorNet

    torch.manual_seed(0)
    path.write_text(json.dumps(to_browser(PredatorNet())))


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path in (ROOT / "web" / "predator").glob("*.*"):
            shutil.copy(path, root / path.name)
        if args.model:
            shutil.copy(args.model, root / "browser_weights.json")
        else:
            random_model(root / "browser_weights.json")
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/index.html?model=browser_weights.json"
        rows = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"])
            for boids in (50, 120, 200):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                # A canvas large enough that few boids are caught while measuring.
                page.goto(f"{base}&boids={boids}&seed=2&width=1920&height=1080&frames={args.frames}")
                page.wait_for_function("ludus.frames >= ludus.stopAt || ludus.state.boids.length === 0", timeout=600_000)
                frame, inference, left = page.evaluate("[ludus.frameMs, ludus.inferenceMs, ludus.state.boids.length]")
                row = {"boids": boids, "boids_at_end": left, "frames": len(frame)}
                rows.append(row | {"frame_ms": statistics.median(frame), "inference_ms": statistics.median(inference)})
                print(json.dumps(rows[-1]), flush=True)
                page.close()
            version = browser.version
            browser.close()
        server.shutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predator-web.json").write_text(json.dumps({"chromium": version, "statistic": "median over frames", "rows": rows}, indent=2) + "\n")
    lines = ["| boids | frame time (ms) | inference (ms) | frames |", "|---|---|---|---|"]
    lines += [f"| {r['boids']} | {r['frame_ms']:.2f} | {r['inference_ms']:.2f} | {r['frames']} |" for r in rows]
    (args.out / "predator-web.md").write_text(f"Headless Chromium {version}, this machine, medians.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
