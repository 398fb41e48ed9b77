"""The repository's shape: the README is a short manual whose commands run as written, files stay
small, bench/results/ holds only what `make bench` writes, and trials live in experiments/."""

from __future__ import annotations

import re

from jobs.settings import all_setting_names
from tests.conftest import ROOT

README = ROOT / "README.md"
# Variables of the Makefile itself (not job settings) that a user may set on the command line.
MAKE_VARIABLES = {"PYTHON", "VENV", "CARGO", "DOCKER", "IMAGE_PREFIX", "IMAGE_TAG", "GIT_REVISION", "BUILD_FLAGS"}
# What `make bench` writes (the Makefile's bench targets and the bench/ scripts they run).
BENCH_OUTPUTS = {
    "generator.json", "generator.md",  # rust_gen ur bench
    "predator.json", "predator.md",  # rust_gen predator bench
    "ur-trainer.json", "ur-trainer.md",  # bench/ur_trainer_bench.py
    "predator-trainer.json", "predator-trainer.md",  # bench/predator_trainer_bench.py
    "predator-python.json",  # bench/predator_python_bench.py
    "predator-web.json", "predator-web.md",  # bench/predator_web_bench.py
    "ddp.json", "ddp.md", "ddp-loss.png",  # bench/ddp_bench.py
    "memory.json", "memory.md", "memory.png",  # bench/memory_bench.py
    "sweep.json", "sweep.md",  # bench/sweep_bench.py
}  # fmt: skip
# On a GPU the trainer benchmarks write the same files with the device's name.
BENCH_DEVICE_OUTPUT = re.compile(r"^(ur|predator)-trainer-(cuda|mps)\.(json|md)$")


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE)}


def readme_make_commands() -> list[str]:
    """Every `make ...` command in the README: in code blocks and in inline code."""
    text = README.read_text()
    commands = [m.group(1) for m in re.finditer(r"`(make [^`]+)`", text)]
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL):
        commands += [line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("make ")]
    return commands


def test_the_readme_is_a_short_manual() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 450, f"README.md has {lines} lines: results belong in docs/results/, trials in experiments/"


def test_every_make_command_in_the_readme_names_a_real_target_and_real_variables() -> None:
    targets, settings = make_targets(), {name.upper() for name in all_setting_names()} | MAKE_VARIABLES
    commands = readme_make_commands()
    assert len(commands) >= 5, commands
    for command in commands:
        words = command.split()[1:]
        named = [w for w in words if "=" not in w and not w.startswith("-")]
        assert named and all(w in targets for w in named), f"README: `{command}` names a target the Makefile lacks"
        variables = [w.split("=", 1)[0] for w in words if "=" in w]
        unknown = [v for v in variables if v not in settings]
        assert not unknown, f"README: `{command}` sets {unknown}, which no job or the Makefile reads"


def test_no_source_file_is_over_700_lines() -> None:
    roots = ["rust_gen/src", "trainer", "jobs", "common", "web"]
    sources = [p for root in roots for p in (ROOT / root).rglob("*") if p.suffix in (".rs", ".py", ".js", ".mjs", ".html")]
    long = {str(p.relative_to(ROOT)): n for p in sources if "test" not in p.parts and (n := p.read_text().count("\n")) > 700}
    assert not long, f"files over 700 lines (split them by concern): {long}"


def test_bench_results_hold_only_what_make_bench_writes() -> None:
    files = {p.name for p in (ROOT / "bench" / "results").iterdir()}
    strays = sorted(f for f in files - BENCH_OUTPUTS if not BENCH_DEVICE_OUTPUT.match(f))
    assert not strays, f"bench/results/ holds files `make bench` does not write (one-off trials go to experiments/<task>/): {strays}"


def test_each_experiment_record_names_the_command_that_made_it() -> None:
    records = sorted((ROOT / "experiments").rglob("*.json"))
    assert records, "experiments/ holds the trial records"
    missing = [str(p.relative_to(ROOT)) for p in records if not re.search(r'"command"\s*:', p.read_text())]
    assert not missing, f'these trial records do not say which command made them (a top-level "command"): {missing}'
