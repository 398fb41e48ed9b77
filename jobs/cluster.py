"""RUNNER=k8s: the pipeline as Kubernetes Jobs, one stage after the other, so no GPU is held
while generation runs. Works from a workstation (current kube context) and inside the cluster
(the ludus-pipeline Job, in-cluster config). Kubernetes does the retrying: backoff limits, the
pod failure policy, TTLs; this submits, follows and reports. It needs only create, get and delete
on Jobs, and on Services for a train stage of several nodes (see the Role in k8s/10-rbac.yaml);
training progress is read from storage, not pod logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from common.errors import ConfigError, JobError
from common.storage import RunLayout, Store, read_metrics, redact
from jobs.k8s import STAGES, job_name, rendezvous_endpoint, train_service, trials_job
from jobs.settings import PipelineSettings
from jobs.tasks import Metric, get_task

POLL_SECONDS = 5.0
DELETE_WAIT_SECONDS = 120.0
SERVICE_DELETE_SECONDS = 60.0  # for a replaced Service to go before its successor is created


def batch_api() -> client.BatchV1Api:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as e:
            raise ConfigError(f"RUNNER='k8s': no Kubernetes context to submit to ({e}); allowed: a kubeconfig context or in-cluster") from e
    return client.BatchV1Api()


def failed(job: client.V1Job) -> bool:
    return any(c.type == "Failed" and c.status == "True" for c in (job.status and job.status.conditions) or [])


def read_job(api: Any, namespace: str, name: str) -> client.V1Job | None:
    """The Job, or None where there is none."""
    try:
        return api.read_namespaced_job(name=name, namespace=namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise JobError(f"cannot read Job {namespace}/{name}: {e.status} {e.reason}") from e


def remove_failed(api: Any, namespace: str, name: str, poll: float) -> None:
    """A Job that failed in an earlier attempt is deleted so the rerun gets a fresh one; the stage
    itself resumes from storage (committed shards are skipped, training resumes its checkpoint)."""
    print(f"Job {namespace}/{name} failed in an earlier attempt: deleting it and starting the stage again", flush=True)
    api.delete_namespaced_job(name=name, namespace=namespace, propagation_policy="Background")
    deadline = time.monotonic() + DELETE_WAIT_SECONDS
    while read_job(api, namespace, name) is not None:
        if time.monotonic() >= deadline:
            raise JobError(f"Job {namespace}/{name} was still being deleted after {DELETE_WAIT_SECONDS:.0f} s")
        time.sleep(poll)


def metadata(job: client.V1Job) -> client.V1ObjectMeta:
    """The metadata of a Job we built (jobs/k8s.py always names and labels it)."""
    assert job.metadata is not None and job.metadata.name and job.metadata.labels is not None
    return job.metadata


def check_owner(existing: client.V1Job, job: client.V1Job) -> None:
    """An existing Job under this name must be this run's Job for this stage."""
    want, got = metadata(job).labels or {}, (existing.metadata and existing.metadata.labels) or {}
    for key in ("app.kubernetes.io/component", "ludus.dev/run-id"):
        if got.get(key) != want[key]:
            raise JobError(
                f"Job {metadata(job).namespace}/{metadata(job).name} exists but is not this run's {want['app.kubernetes.io/component']} "
                f"stage ({key}={got.get(key)!r}, expected {want[key]!r}); delete it or use another RUN_ID"
            )


def submit(api: Any, namespace: str, job: client.V1Job, poll: float) -> None:
    """Creates the Job. One that already exists (a resumed run) is followed as it is, unless it
    failed: then it is replaced. Either way it must carry this run's and stage's labels."""
    name = str(metadata(job).name)
    existing = read_job(api, namespace, name)
    if existing is not None:
        check_owner(existing, job)
    if existing is not None and not failed(existing):
        print(f"Job {namespace}/{name} exists already: following it", flush=True)
        return
    if existing is not None:
        remove_failed(api, namespace, name, poll)
    try:
        api.create_namespaced_job(namespace=namespace, body=job)
    except ApiException as e:
        raise JobError(f"cannot create Job {namespace}/{name}: {e.status} {e.reason}") from e
    print(f"submitted Job {namespace}/{name}", flush=True)


def training_progress(store: Store, layout: RunLayout, epochs: int, headline: tuple[Metric, ...]) -> Callable[[], str]:
    """The train job writes metrics.jsonl to storage after every epoch: its latest epoch."""

    def read() -> str:
        try:
            metrics = read_metrics(store, layout)
        except OSError:
            return ""  # a transient storage error only costs one progress line
        if not metrics:
            return ""
        last = metrics[-1]
        shown = "".join(f", {metric.show(last)}" for metric in headline)
        return f", epoch {last['epoch']}/{epochs}: val loss {last['val_loss']:.4f}{shown}"

    return read


def wait(api: Any, namespace: str, name: str, stage: str, total: int, poll: float, progress: Callable[[], str] | None = None) -> None:
    """Follows a Job until it completes; a failed Job is an error naming the stage and where its
    logs are."""
    last = ""
    while True:
        status = api.read_namespaced_job_status(name=name, namespace=namespace).status
        line = f"{stage}: {status.succeeded or 0}/{total} done, {status.active or 0} running, {status.failed or 0} failed pods"
        line += progress() if progress else ""
        if line != last:
            print(line, flush=True)
            last = line
        for condition in status.conditions or []:
            if condition.status != "True":
                continue
            if condition.type in ("Complete", "SuccessCriteriaMet"):
                return
            if condition.type == "Failed":
                raise JobError(
                    f"stage {stage}: Job {namespace}/{name} failed ({condition.reason}: {condition.message}); "
                    f"its pods' logs: kubectl -n {namespace} logs --selector job-name={name} --tail 50"
                )
        time.sleep(poll)


def ensure_service(api: Any, s: PipelineSettings) -> None:
    """The train Job's headless Service, owned by the Job now there (a Service left by an
    earlier Job of that name is replaced: its owner is gone and the collector would remove it)."""
    namespace, name = s.k8s_namespace, job_name(s, "train")
    job = read_job(api, namespace, name)
    uid = job.metadata.uid if job is not None and job.metadata is not None else None
    core = client.CoreV1Api(api.api_client)
    try:
        existing = core.read_namespaced_service(name=name, namespace=namespace)
    except ApiException as e:
        if e.status != 404:
            raise JobError(f"cannot read Service {namespace}/{name}: {e.status} {e.reason}") from e
        existing = None
    if existing is not None:
        if existing.metadata is not None and [o.uid for o in existing.metadata.owner_references or []] == [uid]:
            return
        core.delete_namespaced_service(name=name, namespace=namespace)
    deadline = time.monotonic() + SERVICE_DELETE_SECONDS
    while True:
        try:
            core.create_namespaced_service(namespace=namespace, body=train_service(s, uid))
            break
        except ApiException as e:
            # 409: the old Service is still being deleted (finalizers); it goes within seconds.
            if e.status != 409 or time.monotonic() > deadline:
                raise JobError(f"cannot create Service {namespace}/{name}: {e.status} {e.reason}") from e
            time.sleep(1.0)
    print(f"created Service {namespace}/{name}: the train pods meet at {rendezvous_endpoint(s)}", flush=True)


def run_stage_on_cluster(s: PipelineSettings, stage: str, api: Any, poll: float = POLL_SECONDS) -> None:
    job = STAGES[stage](s)
    submit(api, s.k8s_namespace, job, poll)
    if stage == "train" and s.train_nodes > 1:
        ensure_service(api, s)
    progress = None
    if stage == "train":
        progress = training_progress(Store(s.storage_url), RunLayout(s.task, s.run_id), s.epochs, get_task(s.task).headline)
    wait(api, s.k8s_namespace, job_name(s, stage), stage, (job.spec.completions if job.spec else None) or 1, poll, progress)


def check_settings(s: PipelineSettings, store_is_local: bool) -> None:
    if store_is_local:
        raise ConfigError(
            f"STORAGE_URL={redact(s.storage_url)!r}: pods cannot see this machine's folders; with RUNNER=k8s use an object store such as s3://bucket/prefix"
        )
    if s.rounds > 1:
        raise ConfigError(f"ROUNDS={s.rounds}: RUNNER=k8s runs one round so far; run later rounds with RUNNER=local, or unset ROUNDS")


def indexes(text: str | None) -> set[int]:
    """Kubernetes' list of indexes ("0-2,5") as a set."""
    found: set[int] = set()
    for part in (text or "").split(","):
        if part:
            low, _, high = part.partition("-")
            found.update(range(int(low), int(high or low) + 1))
    return found


def run_trials_on_cluster(s: PipelineSettings, numbers: list[int], api: Any, watch: Callable[[], str], poll: float = POLL_SECONDS) -> dict[int, bool]:
    """Runs a batch of a sweep's trials (consecutive numbers) as one Indexed Job; `watch` is
    called while they run (the sweep's pruner). Returns whether each trial succeeded."""
    job = trials_job(s, numbers[0], len(numbers))
    name = str(metadata(job).name)
    submit(api, s.k8s_namespace, job, poll)
    try:
        wait(api, s.k8s_namespace, name, "trials", len(numbers), poll, lambda: f"; {watch()}")
    except JobError as e:
        print(f"some trials failed: {e}", flush=True)
    done = indexes(api.read_namespaced_job_status(name=name, namespace=s.k8s_namespace).status.completed_indexes)
    return {number: i in done for i, number in enumerate(numbers)}
