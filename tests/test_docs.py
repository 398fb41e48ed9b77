"""The README documents what the code does: every setting, both commands."""

from __future__ import annotations

from jobs.settings import all_setting_names
from tests.conftest import ROOT


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name.upper() for name in sorted(all_setting_names()) if f"| `{name.upper()}` |" not in readme]
    assert not missing, f"README settings table lacks {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:1500]
    assert "make job GAMES=2000" in head and "make test" in head
