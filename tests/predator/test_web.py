"""The predator's page in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright, with a small model trained here. The page runs 600 frames with a fixed seed; the
network must be the policy that ran, boids must be caught, the console must stay clean, and the
trajectory must equal the same run in Node bit for bit. Also: an old page that loads
`predator_model.js` with a script tag gets the same network, and a bad model file is an error on
the page naming the field. The Node suites (node --test web/predator/test/) run here too. A screenshot goes
to tests/artifacts/."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.storage import RunLayout, Store
from tests.conftest import ROOT, run_job

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
RUN = {"seed": 3, "boids": 30, "width": 400, "height": 300, "frames": 600}


@pytest.fixture(scope="module")
def model(generator: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser file of a tiny model trained on pursuit episodes."""
    store = tmp_path_factory.mktemp("web-store")
    settings = {"TASK": "predator", "TEACHER": "pursuit", "GAMES": 8, "SHARDS": 1, "STEPS": 300, "MAX_BOIDS": 30, "EPOCHS": 3}
    for job in ("generate", "train"):
        result = run_job(job, STORAGE_URL=store, RUN_ID="web", DEVICE="cpu", **settings)
        assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path_factory.mktemp("web-model")
    data = Store(str(store)).read_bytes(RunLayout("predator", "web").model_file("browser_weights.json"))
    (folder / "browser_weights.json").write_bytes(data)
    (folder / "predator_model.js").write_bytes(Store(str(store)).read_bytes(RunLayout("predator", "web").model_file("predator_model.js")))
    return folder


@pytest.fixture(scope="module")
def site(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """web/ and the model files served on 127.0.0.1; yields the base URL."""
    root = tmp_path_factory.mktemp("site")
    for path in (ROOT / "web" / "predator").glob("*.*"):
        shutil.copy(path, root / path.name)
    for path in model.iterdir():
        shutil.copy(path, root / path.name)
    page = (root / "index.html").read_text()
    old = page.replace('<script type="module" src="app.js">', '<script src="predator_model.js"></script>\n<script type="module" src="app.js">')
    (root / "old.html").write_text(old)
    bad = json.loads((root / "browser_weights.json").read_text())
    del bad["layers"][2]["ffn_down_bias"]
    (root / "bad.json").write_text(json.dumps(bad))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def open_page(browser: object, url: str) -> tuple[object, list[str]]:
    page = browser.new_page(viewport={"width": 900, "height": 700})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


def query(**extra: object) -> str:
    return "&".join(f"{k}={v}" for k, v in {**RUN, **extra}.items())


DONE = "window.ludus.state && (window.ludus.frames >= window.ludus.stopAt || window.ludus.state.boids.length === 0)"
SNAPSHOT = """({
  frames: ludus.frames, caught: ludus.caught, state: ludus.state, net: !!ludus.net, errors: ludus.errors,
  policy: document.getElementById('policy').value, message: document.getElementById('message').textContent,
})"""


def finished(page: object) -> dict:  # type: ignore[type-arg]
    page.wait_for_function(DONE, timeout=120_000)  # type: ignore[attr-defined]
    return page.evaluate(SNAPSHOT)  # type: ignore[attr-defined]


def node_run(model: Path) -> dict:  # type: ignore[type-arg]
    args = [str(model / "browser_weights.json"), *(str(RUN[k]) for k in ("seed", "boids", "width", "height", "frames"))]
    return json.loads(
        subprocess.run(["node", str(ROOT / "web" / "predator" / "tools" / "run.mjs"), *args], capture_output=True, text=True, check=True).stdout
    )


def test_the_page_runs_the_network_and_equals_the_node_run(browser: object, site: str, model: Path) -> None:
    page, errors = open_page(browser, f"{site}/index.html?model=browser_weights.json&{query()}")
    run = finished(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-predator.png"))  # type: ignore[attr-defined]
    assert run["net"] and run["policy"] == "network", run["message"]
    assert run["caught"] > 0, "boids were caught"
    assert not errors and not run["errors"], errors + run["errors"]
    expected = node_run(model)
    assert (run["frames"], run["caught"]) == (expected["frames"], expected["caught"])
    assert run["state"] == expected["state"], "the browser's trajectory is the Node one, bit for bit"


def test_an_old_page_with_a_script_tag_gets_the_same_network(browser: object, site: str, model: Path) -> None:
    page, errors = open_page(browser, f"{site}/old.html?{query()}")
    run = finished(page)
    assert run["net"] and "predator_model.js" in run["message"] and not errors
    assert run["state"] == node_run(model)["state"]


def test_a_bad_model_is_an_error_on_the_page_naming_the_field(browser: object, site: str) -> None:
    page, _ = open_page(browser, f"{site}/index.html?model=bad.json&{query(frames=5)}")
    run = finished(page)
    assert not run["net"], "no silent fallback to some other network"
    assert "field 'layers.2.ffn_down_bias' is missing" in run["message"]
    assert "pursuit (no model)" in page.evaluate("document.getElementById('figures').textContent")  # type: ignore[attr-defined]


def test_the_node_suites_pass() -> None:
    import sys

    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    result = subprocess.run(["node", "--test", "web/predator/test/"], cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
