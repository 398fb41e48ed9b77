"""The retrain workflow hands the store's secrets only to the steps that read the store
(hardening, item 19)."""

from __future__ import annotations

import yaml

from jobs.tasks import REGISTRY
from tests.conftest import ROOT


def test_store_secrets_reach_only_the_steps_that_read_the_store() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "retrain.yml").read_text())
    job = workflow["jobs"]["retrain"]
    assert not any("secrets." in str(value) for value in job.get("env", {}).values()), "no secret in the job's environment"
    holders = [step["name"] for step in job["steps"] if "AWS_SECRET_ACCESS_KEY" in step.get("env", {})]
    assert holders == ["Run the pipeline on the cluster", "Publish the evaluation report"]


def test_the_workflow_offers_every_task_of_the_registry() -> None:
    """Adding a task to jobs/tasks/ must add it to the retrain workflow's choice too."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "retrain.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as the boolean true
    options = triggers["workflow_dispatch"]["inputs"]["task"]["options"]
    assert sorted(options) == sorted(REGISTRY), f"retrain.yml offers {options}; the registry has {sorted(REGISTRY)}"
