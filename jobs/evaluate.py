"""The evaluate job (placeholder until the evaluator lands: it says so and writes nothing)."""

from __future__ import annotations

import logging

from jobs.settings import EvaluateSettings

log = logging.getLogger(__name__)


def run_evaluate(s: EvaluateSettings) -> None:
    print("evaluate: NOTICE: the match evaluator is not built yet; skipping evaluation and promotion", flush=True)
