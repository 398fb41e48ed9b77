"""RUNNER=k8s: the pipeline as Kubernetes Jobs, one stage after the other, so no GPU is held
while generation runs. Works from a workstation (current kube context) and inside the cluster
(the ludus-pipeline Job, in-cluster config). Kubernetes does the retrying: backoff limits, the
pod failure policy, TTLs; this only submits, watches and reports."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobs.errors import JobError
from jobs.k8s import STAGES, job_name
from jobs.settings import ConfigError, PipelineSettings

POLL_SECONDS = 5.0


def batch_api() -> client.BatchV1Api:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as e:
            raise ConfigError(f"RUNNER='k8s': no Kubernetes context to submit to ({e}); allowed: a kubeconfig context or in-cluster") from e
    return client.BatchV1Api()


def submit(api: Any, namespace: str, job: client.V1Job) -> None:
    """Creates the Job; one that already exists (a resumed run) is watched as it is."""
    name = job.metadata.name
    try:
        api.create_namespaced_job(namespace=namespace, body=job)
        print(f"submitted Job {namespace}/{name}", flush=True)
    except ApiException as e:
        if e.status != 409:
            raise JobError(f"cannot create Job {namespace}/{name}: {e.status} {e.reason}") from e
        print(f"Job {namespace}/{name} exists already: following it", flush=True)


def wait(api: Any, namespace: str, name: str, stage: str, total: int, poll: float) -> None:
    """Follows a Job until it completes; a failed Job is an error naming the stage."""
    last = ""
    while True:
        status = api.read_namespaced_job_status(name=name, namespace=namespace).status
        line = f"{stage}: {status.succeeded or 0}/{total} done, {status.active or 0} running, {status.failed or 0} failed pods"
        if line != last:
            print(line, flush=True)
            last = line
        for condition in status.conditions or []:
            if condition.status != "True":
                continue
            if condition.type in ("Complete", "SuccessCriteriaMet"):
                return
            if condition.type == "Failed":
                raise JobError(f"stage {stage}: Job {namespace}/{name} failed ({condition.reason}: {condition.message})")
        time.sleep(poll)


def run_stage_on_cluster(s: PipelineSettings, stage: str, api: Any, poll: float = POLL_SECONDS) -> None:
    job = STAGES[stage](s)
    submit(api, s.k8s_namespace, job)
    wait(api, s.k8s_namespace, job_name(s, stage), stage, job.spec.completions or 1, poll)


def check_settings(s: PipelineSettings, store_is_local: bool) -> None:
    if store_is_local:
        raise ConfigError(
            f"STORAGE_URL={s.storage_url!r}: pods cannot see this machine's folders; with RUNNER=k8s use an object store such as s3://bucket/prefix"
        )
