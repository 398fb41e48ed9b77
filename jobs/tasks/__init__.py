"""The task registry: everything the jobs need to know about a task, importing no torch (the
generator image has none). A new task is a module here plus one line in REGISTRY.

Each stage's settings class is the generic job class extended by the task's own class for that
stage (`jobs.settings.settings_class`).
"""

from __future__ import annotations

from jobs.tasks import predator, ur
from jobs.tasks.spec import STAGES, Evaluation, Metric, TaskSpec

__all__ = ["DEFAULT_TASK", "REGISTRY", "STAGES", "Evaluation", "Metric", "TaskSpec", "UnknownTask", "get_task"]

REGISTRY: dict[str, TaskSpec] = {spec.name: spec for spec in [ur.spec(), predator.spec()]}
DEFAULT_TASK = "ur"


class UnknownTask(ValueError):
    pass


def get_task(name: str) -> TaskSpec:
    if name not in REGISTRY:
        raise UnknownTask(f"unknown task {name!r}; registered tasks: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]
