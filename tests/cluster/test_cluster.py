"""Our manifests, controller and images on a real Kubernetes cluster (tests/cluster/cluster.py):
etcd, the API server (RBAC, Pod Security admission, validation), the controller manager (the
Job controller: Indexed completions, per-index backoff, the pod failure policy), the scheduler,
a kubelet and containerd running our images as pods, with a real S3 server as the store.

The node has 2 cores and no GPU, so the runs set the documented sizes to fit it (TRAIN_GPUS=0
and the CPU and memory settings) besides STORAGE_URL and the images. Run with `make test-k8s`."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from common.errors import JobError
from common.storage import RunLayout, Store, read_committed_shard, read_metrics
from jobs.cluster import run_stage_on_cluster, submit, wait
from jobs.k8s import STAGES, generate_job, job_name, train_job, trials_job
from jobs.manifests import K8S
from jobs.settings import PipelineSettings, settings_class
from jobs.sweep import run_sweep
from tests.cluster import cluster
from tests.cluster.conftest import GEN, PULL_SECRET, TRAIN, Cluster, pull_secret, storage_secret
from tests.conftest import ROOT, jobs_env, make_bucket

NAMESPACE = "ludus"
STORE = "s3://cluster/ludus"
# A 2-core node without a GPU: the pods' sizes (documented settings) that fit it.
NODE_SIZES = {
    "SHARDS": "2", "GENERATE_PARALLELISM": "2", "GENERATE_CPU": "500m", "GENERATE_MEMORY": "1Gi", "TRAIN_GPUS": "0",
    "TRAIN_CPU": "1", "TRAIN_MEMORY": "3Gi", "EVALUATE_CPU": "1", "EVALUATE_MEMORY": "2Gi", "IMAGE_PULL_SECRET": PULL_SECRET,
}  # fmt: skip
SMALL_RUN = {"PRESET": "test", "DEPTH": "1", "EPOCHS": "2", "EVAL_GAMES": "20", "GAMES": "40"}


def until(what: str, check: Callable[[], Any], timeout: float, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(poll)


def settings(run_id: str, **overrides: str) -> PipelineSettings:
    values = {"storage_url": STORE, "run_id": run_id, "runner": "k8s", "gen_image": GEN, "train_image": TRAIN, "device": "cpu"}
    values |= {k.lower(): v for k, v in {**NODE_SIZES, **SMALL_RUN, **overrides}.items() if k != "PRESET"}
    return settings_class("pipeline", "ur").model_validate(values)


def condition(job: client.V1Job, kind: str) -> client.V1JobCondition | None:
    return next((c for c in (job.status.conditions or []) if c.type == kind and c.status == "True"), None)


def job_done(k8s: Cluster, name: str) -> Callable[[], client.V1Job | None]:
    def check() -> client.V1Job | None:
        job = k8s.batch.read_namespaced_job_status(name, NAMESPACE)
        failed = condition(job, "Failed")
        assert failed is None, f"Job {name} failed: {failed.reason}: {failed.message}"
        return job if condition(job, "Complete") else None

    return check


def pods_of(k8s: Cluster, job: str) -> list[client.V1Pod]:
    pods = k8s.core.list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job}").items
    return sorted(pods, key=lambda p: p.metadata.creation_timestamp)


def kill_container(pod: client.V1Pod) -> list[int]:
    """SIGKILL to every process of the pod's container, from this machine, as the kernel's OOM
    killer or a crash would end it: found by the container's cgroup, which the kubelet names."""
    container_id = pod.status.container_statuses[0].container_id.split("://")[1]
    procs = [p for p in Path("/sys/fs/cgroup/pids/kubepods").rglob(f"pod{pod.metadata.uid}/{container_id}/cgroup.procs")]
    assert len(procs) == 1, f"no cgroup for container {container_id} of {pod.metadata.name}"
    pids = [int(p) for p in procs[0].read_text().split()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def container_processes(pod: client.V1Pod) -> int:
    statuses = pod.status.container_statuses or []
    if not statuses or not statuses[0].container_id or statuses[0].state.running is None:
        return 0
    container_id = statuses[0].container_id.split("://")[1]
    procs = list(Path("/sys/fs/cgroup/pids/kubepods").rglob(f"pod{pod.metadata.uid}/{container_id}/cgroup.procs"))
    return len(procs[0].read_text().split()) if procs else 0


def user_manifests(folder: Path, overrides: dict[str, str], task: str = "ur") -> Path:
    """k8s/<task>/ as a user edits it before `kubectl apply -f k8s/<task>/`: the ConfigMap's
    settings and the pipeline Job's image (the same TRAIN_IMAGE); nothing else is touched."""
    folder.mkdir()
    for path in sorted((K8S / task).glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                doc["data"].update(overrides)
            if doc["kind"] == "Job":
                doc["spec"]["template"]["spec"]["containers"][0]["image"] = overrides["TRAIN_IMAGE"]
        (folder / path.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def test_kubectl_apply_runs_the_whole_pipeline_in_the_cluster(k8s: Cluster, store_env: dict[str, str], tmp_path: Path) -> None:
    overrides = {"STORAGE_URL": STORE, "GEN_IMAGE": GEN, "TRAIN_IMAGE": TRAIN, **NODE_SIZES, **SMALL_RUN}
    manifests = user_manifests(tmp_path / "k8s", overrides)
    # As the README says: the shared files (`kubectl apply -f k8s/`), then the Secret (never a
    # file in the repository), then the task's folder.
    k8s.kubectl("apply", "-f", K8S)
    ensure_secret(k8s)
    started = time.monotonic()
    k8s.kubectl("apply", "-f", manifests)
    pipeline = k8s.batch.read_namespaced_job("ludus-pipeline", NAMESPACE)
    run_id = pipeline.metadata.uid  # the manifest's RUN_ID is the Job's uid
    store, layout = Store(STORE), RunLayout("ur", run_id)
    until("the first committed shard", lambda: store.exists(layout.shard_manifest(0)) or store.exists(layout.shard_manifest(1)), 600)
    first_shard = time.monotonic() - started
    champion = until("the promoted model", lambda: store.exists(layout.champion) and store.read_json(layout.champion)["run_id"] == run_id, 1200, 2)
    promoted = time.monotonic() - started
    assert champion
    done = until("the pipeline Job", job_done(k8s, "ludus-pipeline"), 300)
    assert done.status.succeeded == 1
    k8s.record(apply_to_first_shard_seconds=round(first_shard, 1), apply_to_promoted_seconds=round(promoted, 1))
    # Every stage ran as its own Job, in the cluster, from the images.
    s = settings(run_id)
    gen = k8s.batch.read_namespaced_job(job_name(s, "generate"), NAMESPACE)
    assert gen.spec.completion_mode == "Indexed" and gen.status.succeeded == 2 and gen.status.completed_indexes == "0,1"
    # Pulled by the kubelet from the registry with the pull secret: imageID is the registry's digest.
    digests = {image: k8s.oci.digest(image.split("/", 1)[1].split(":")[0], "test") for image in (GEN, TRAIN)}
    for stage, image in (("generate", GEN), ("train", TRAIN), ("evaluate", TRAIN), ("pipeline", TRAIN)):
        job = k8s.batch.read_namespaced_job(job_name(s, stage) if stage != "pipeline" else "ludus-pipeline", NAMESPACE)
        assert condition(job, "Complete"), stage
        pods = pods_of(k8s, job.metadata.name)
        assert {p.spec.containers[0].image for p in pods} == {image}
        assert {p.status.container_statuses[0].image_id for p in pods} == {f"{image.split(':test')[0]}@{digests[image]}"}, stage
        assert all([r.name for r in p.spec.image_pull_secrets] == [PULL_SECRET] for p in pods), stage
    for index in (0, 1):
        manifest, _ = read_committed_shard(store, layout, index)  # digest checked
        assert manifest.games == 20
    assert len(read_metrics(store, layout)) == 2 and store.exists(layout.weights)
    report = store.read_json(f"{layout.eval}/report.json")
    assert report["promoted"] is True, report
    logs = k8s.kubectl("-n", NAMESPACE, "logs", "job/ludus-pipeline").stdout  # through the API server and the kubelet
    assert "generate: 2/2 done" in logs and "== summary" in logs, logs[-3000:]


def bearer(token: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    """The status of one request to the API server with a ServiceAccount's token."""
    context = ssl.create_default_context(cafile=str(cluster.RUN / "pki" / "ca.crt"))
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"https://127.0.0.1:{cluster.API_PORT}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_rbac_gives_the_pipeline_jobs_only_and_the_stages_nothing(k8s: Cluster) -> None:
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    pipeline = k8s.kubectl("-n", NAMESPACE, "create", "token", "ludus-pipeline").stdout.strip()
    stage = k8s.kubectl("-n", NAMESPACE, "create", "token", "ludus-stage").stdout.strip()
    jobs = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
    probe = client.ApiClient().sanitize_for_serialization(STAGES["evaluate"](settings("rbac-probe")))
    assert bearer(pipeline, "POST", f"{jobs}?dryRun=All", probe) == 201
    assert bearer(pipeline, "GET", f"{jobs}/ludus-pipeline") in (200, 404)  # allowed: found or not
    assert bearer(pipeline, "GET", f"{jobs}/ludus-pipeline/status") in (200, 404)
    assert bearer(pipeline, "DELETE", f"{jobs}/no-such-job?dryRun=All") == 404  # allowed, and nothing there
    for path in (f"/api/v1/namespaces/{NAMESPACE}/pods", f"/api/v1/namespaces/{NAMESPACE}/secrets", jobs, "/api/v1/namespaces/default/pods"):
        assert bearer(pipeline, "GET", path) == 403, path
    for method, path in (("GET", f"{jobs}/ludus-pipeline"), ("POST", f"{jobs}?dryRun=All"), ("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")):
        assert bearer(stage, method, path, probe if method == "POST" else None) == 403, (method, path)
    sa = k8s.core.read_namespaced_service_account("ludus-stage", NAMESPACE)
    assert sa.automount_service_account_token is False


def test_the_api_server_refuses_a_pod_that_breaks_the_restricted_standard(k8s: Cluster) -> None:
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    job = client.ApiClient().sanitize_for_serialization(STAGES["generate"](settings("pss-probe")))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pss-probe", "namespace": NAMESPACE}, "spec": job["spec"]["template"]["spec"]}
    assert k8s.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod)).returncode == 0, "our pod spec is admitted"
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    del pod["spec"]["securityContext"]["seccompProfile"]
    refused = k8s.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    assert "allowPrivilegeEscalation != false" in refused.stderr and "seccompProfile" in refused.stderr


def test_a_generator_pod_killed_mid_shard_is_retried_for_its_index_only(k8s: Cluster, store_env: dict[str, str]) -> None:
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    ensure_secret(k8s)
    s = settings("kill-generator", GAMES="2400", DEPTH="3")
    job = generate_job(s)
    k8s.batch.create_namespaced_job(NAMESPACE, job)
    name = job.metadata.name

    def running_generator() -> client.V1Pod | None:
        pods = [p for p in pods_of(k8s, name) if p.metadata.annotations.get("batch.kubernetes.io/job-completion-index") == "0"]
        return pods[0] if pods and container_processes(pods[0]) >= 2 else None  # python and rust_gen

    victim = until("the index 0 generator running", running_generator, 180, 0.3)
    time.sleep(2)
    store, layout = Store(STORE), RunLayout("ur", s.run_id)
    assert not store.exists(layout.shard_manifest(0)), "the shard finished before the kill: give it more GAMES"
    kill_container(victim)
    done = until("the generate Job", job_done(k8s, name), 600)
    assert done.status.failed == 1 and done.status.succeeded == 2 and done.status.completed_indexes == "0,1"
    by_index: dict[str, list[client.V1Pod]] = {}
    for pod in pods_of(k8s, name):
        by_index.setdefault(pod.metadata.annotations["batch.kubernetes.io/job-completion-index"], []).append(pod)
    assert [p.status.phase for p in by_index["0"]] == ["Failed", "Succeeded"]
    assert by_index["0"][0].status.container_statuses[0].state.terminated.exit_code == 137
    assert [p.status.phase for p in by_index["1"]] == ["Succeeded"], "the other index was not run again"
    manifest, _ = read_committed_shard(store, layout, 0)
    assert manifest.games == 1200


def ensure_secret(k8s: Cluster) -> None:
    """The Secrets a user creates in the namespace: the store's credentials and the registry's."""
    pull_secret(k8s)
    literals = [f"--from-literal={k}={v}" for k, v in storage_secret(k8s).items()]
    found = k8s.kubectl("-n", NAMESPACE, "get", "secret", "ludus-storage", check=False)
    if found.returncode != 0:
        k8s.kubectl("-n", NAMESPACE, "create", "secret", "generic", "ludus-storage", *literals)


def test_a_failing_index_fails_the_stage_and_a_rerun_from_a_workstation_replaces_the_job(
    k8s: Cluster, store_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    ensure_secret(k8s)
    s = settings("workstation")
    broken = generate_job(s)
    broken.spec.completions = 3  # index 2 >= SHARDS: that pod exits 2 on every try
    broken.spec.backoff_limit_per_index = 1
    # Exit code 2 (settings refused) would fail the whole Job at once through the FailJob rule
    # (the retrain test sees that path); here the per-index backoff is under test, so only the
    # rule that ignores disruptions stays.
    broken.spec.pod_failure_policy.rules = [r for r in broken.spec.pod_failure_policy.rules if r.action == "Ignore"]
    with pytest.raises(JobError, match=r"stage generate: Job ludus/ludus-workstation-generate failed \(FailedIndexes: .*kubectl -n ludus logs"):
        submit(k8s.batch, NAMESPACE, broken, poll=1)
        wait(k8s.batch, NAMESPACE, broken.metadata.name, "generate", 3, poll=1)
    status = k8s.batch.read_namespaced_job_status(broken.metadata.name, NAMESPACE).status
    assert status.failed_indexes == "2" and status.completed_indexes == "0,1"
    log_2 = k8s.kubectl("-n", NAMESPACE, "logs", pods_of(k8s, broken.metadata.name)[-1].metadata.name).stdout
    assert "SHARD_INDEX=2 is not below SHARDS x ROUNDS = 2" in log_2, log_2
    # The same run from a workstation: `make job RUNNER=k8s` with a kubeconfig and the store.
    env = jobs_env(
        **{"STORAGE_URL": STORE, "RUN_ID": "workstation", "RUNNER": "k8s", "GEN_IMAGE": GEN, "TRAIN_IMAGE": TRAIN, **NODE_SIZES, **SMALL_RUN}
    )
    env.update(store_env, KUBECONFIG=str(k8s.kubeconfig))
    started = time.monotonic()
    result = subprocess.run(["make", "--no-print-directory", "job"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    k8s.record(workstation_rerun_seconds=round(time.monotonic() - started, 1))
    out = result.stdout
    assert "Job ludus/ludus-workstation-generate failed in an earlier attempt: deleting it" in out, out
    assert "generate: 2/2 done" in out and "epoch 2/2: val loss" in out and "== summary" in out, out
    gen = k8s.batch.read_namespaced_job("ludus-workstation-generate", NAMESPACE)
    assert gen.spec.completions == 2 and condition(gen, "Complete")
    for pod in pods_of(k8s, "ludus-workstation-generate"):  # the shards the failed Job committed are kept
        assert "already committed" in k8s.kubectl("-n", NAMESPACE, "logs", pod.metadata.name).stdout
    assert Store(STORE).exists(f"{RunLayout('ur', 'workstation').eval}/report.json")


def test_a_job_of_another_stage_under_a_stages_name_is_not_followed(k8s: Cluster) -> None:
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    s = settings("foreign")
    impostor = generate_job(s)
    impostor.metadata.name = job_name(s, "train")
    impostor.spec.suspend = True  # no pods: only its name and labels matter
    k8s.batch.create_namespaced_job(NAMESPACE, impostor)
    with pytest.raises(JobError, match=r"exists but is not this run's train stage \(app.kubernetes.io/component='generate'"):
        submit(k8s.batch, NAMESPACE, train_job(s), poll=1)


def test_the_train_pod_evicted_then_killed_resumes_from_its_checkpoint(k8s: Cluster, store_env: dict[str, str]) -> None:
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    ensure_secret(k8s)
    make_bucket("cluster")
    epochs = 10
    s = settings("evict-train", GAMES="1200", EPOCHS=str(epochs), PATIENCE="100")
    for index in range(2):  # the data, written from here into the same store
        result = subprocess.run(
            [sys.executable, "-m", "jobs", "generate"],
            env=jobs_env(STORAGE_URL=STORE, RUN_ID=s.run_id, GAMES=1200, SHARDS=2, SHARD_INDEX=index, DEPTH=1) | store_env,
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    job = train_job(s)
    k8s.batch.create_namespaced_job(NAMESPACE, job)
    name = job.metadata.name
    store, layout = Store(STORE), RunLayout("ur", s.run_id)

    def epochs_done() -> int:
        return len(read_metrics(store, layout)) if store.exists(layout.metrics) else 0

    until("a first epoch", lambda: epochs_done() >= 1, 600, 0.3)
    first = pods_of(k8s, name)[0]
    # An eviction, as a drain or a preemption does it: the pod gets a DisruptionTarget condition
    # and is deleted; the Job controller's pod failure policy ignores it.
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=first.metadata.name, namespace=NAMESPACE))
    k8s.core.create_namespaced_pod_eviction(first.metadata.name, NAMESPACE, eviction)
    evicted_at = epochs_done()
    assert evicted_at < epochs, "training finished before the eviction: give it more data"
    conditions = k8s.core.read_namespaced_pod(first.metadata.name, NAMESPACE).status.conditions
    assert any(c.type == "DisruptionTarget" and c.status == "True" for c in conditions), conditions

    def new_running_pod(known: set[str]) -> client.V1Pod | None:
        return next((p for p in pods_of(k8s, name) if p.metadata.name not in known and p.status.phase == "Running"), None)

    second = until("the replacement pod", lambda: new_running_pod({first.metadata.name}), 300, 0.3)
    until("an epoch in the replacement pod", lambda: epochs_done() > evicted_at, 600, 0.3)
    killed_at = epochs_done()
    assert killed_at < epochs, "training finished before the kill: give it more data"
    kill_container(second)
    third = until("the second replacement pod", lambda: new_running_pod({first.metadata.name, second.metadata.name}), 300, 0.3)
    done = until("the train Job", job_done(k8s, name), 900)
    assert done.status.failed == 1 and done.status.succeeded == 1, "the kill counts against the backoff limit, the eviction does not"
    assert [p.metadata.name for p in pods_of(k8s, name)] == [second.metadata.name, third.metadata.name], "the evicted pod is gone"
    assert [m["epoch"] for m in read_metrics(store, layout)] == list(range(1, epochs + 1))
    for pod in (second, third):
        logs = k8s.kubectl("-n", NAMESPACE, "logs", pod.metadata.name).stdout
        assert "resuming after epoch" in logs, logs[-2000:]
    assert store.exists(layout.weights)


def test_two_train_pods_meet_through_the_clusters_dns_and_train_like_one(k8s: Cluster, store_env: dict[str, str]) -> None:
    """TRAIN_NODES=2: the controller submits an Indexed Job and its headless Service; the pods find
    each other by name through the cluster's DNS (CoreDNS), meet at pod 0 (torchrun's c10d
    rendezvous) and train one model with DistributedDataParallel over gloo. The same data trained
    by one pod gives a validation loss within 1% after 3 epochs, the contract's tolerance."""
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    ensure_secret(k8s)
    make_bucket("cluster")
    losses = {}
    for run_id, nodes in (("one-node", 1), ("two-nodes", 2)):
        for index in range(2):  # the same data for both runs, written from here into the store
            result = subprocess.run(
                [sys.executable, "-m", "jobs", "generate"],
                env=jobs_env(STORAGE_URL=STORE, RUN_ID=run_id, GAMES=400, SHARDS=2, SHARD_INDEX=index, DEPTH=1) | store_env,
                cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
        s = settings(run_id, GAMES="400", EPOCHS="3", PATIENCE="100", TRAIN_NODES=str(nodes), TRAIN_CPU="500m")
        run_stage_on_cluster(s, "train", k8s.batch, poll=1)
        losses[nodes] = [m["val_loss"] for m in read_metrics(Store(STORE), RunLayout("ur", run_id))]
        pods = pods_of(k8s, job_name(s, "train"))
        assert len(pods) == nodes and all(p.status.phase == "Succeeded" for p in pods), [p.status.phase for p in pods]
    name = job_name(settings("two-nodes"), "train")
    service = k8s.core.read_namespaced_service(name, NAMESPACE)
    job = k8s.batch.read_namespaced_job(name, NAMESPACE)
    assert service.spec.cluster_ip == "None" and [o.uid for o in service.metadata.owner_references] == [job.metadata.uid]
    first = next(p for p in pods_of(k8s, name) if p.metadata.labels["batch.kubernetes.io/job-completion-index"] == "0")
    logs = k8s.kubectl("-n", NAMESPACE, "logs", first.metadata.name).stdout
    assert "training on 1 process(es) x 2 node(s)" in logs, logs[-2000:]
    assert len(losses[1]) == len(losses[2]) == 3
    assert abs(losses[2][-1] - losses[1][-1]) <= 0.01 * losses[1][-1], losses


def test_a_sweep_runs_its_trials_as_one_indexed_job_and_evaluates_the_best(k8s: Cluster, store_env: dict[str, str]) -> None:
    """RUNNER=k8s, TRIALS=2, PARALLEL=2: the sweep controller (here, in this process) generates the
    run's shards with a generate Job, runs both trials as one Indexed Job of the trainer image
    (pod i trains trial i on the run's shards), reads their epochs from the store and evaluates
    the best trial with an evaluate Job."""
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    ensure_secret(k8s)
    values = {"storage_url": STORE, "run_id": "sweep", "runner": "k8s", "gen_image": GEN, "train_image": TRAIN, "device": "cpu"}
    values |= {k.lower(): v for k, v in {**NODE_SIZES, **SMALL_RUN, "TRAIN_CPU": "500m"}.items() if k != "PRESET"}
    values |= {"trials": 2, "parallel": 2, "sweep_pruner": "none", "sweep_space": "learning_rate=0.001..0.01:log,epochs=1..2"}
    s = settings_class("sweep", "ur").model_validate(values)
    result = run_sweep(s, api=k8s.batch)
    store, layout = Store(STORE), RunLayout("ur", "sweep")
    trials = [store.read_json(f"{layout.run}/sweep/trials/trial-{n:04d}.json") for n in (0, 1)]
    assert [t["state"] for t in trials] == ["complete", "complete"], trials
    name = job_name(s, "trials-0")
    job = k8s.batch.read_namespaced_job_status(name, NAMESPACE)
    assert job.spec.completion_mode == "Indexed" and job.spec.completions == 2 and job.status.completed_indexes == "0,1"
    pods = pods_of(k8s, name)
    assert sorted(p.metadata.labels["batch.kubernetes.io/job-completion-index"] for p in pods) == ["0", "1"]
    for pod in pods:
        assert pod.spec.security_context.run_as_non_root and [x.name for x in pod.spec.image_pull_secrets] == [PULL_SECRET]
    for t in trials:
        assert len(read_metrics(store, RunLayout("ur", t["run_id"]))) == t["params"]["epochs"]
    assert result["best_run_id"] in {t["run_id"] for t in trials}
    assert store.exists(f"{RunLayout('ur', result['best_run_id']).eval}/report.json")
    assert store.read_bytes(f"{layout.run}/sweep/trials.csv").decode().count("\n") == 3


def test_stage_jobs_are_valid_for_the_real_api_server(k8s: Cluster) -> None:
    """Server-side dry runs: the API server validates every Job we build (and rejects a broken one)."""
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml")
    for job in [build(settings("dry-run")) for build in STAGES.values()] + [trials_job(settings("dry-run"), 0, 2)]:
        body = client.ApiClient().sanitize_for_serialization(job)
        k8s.batch.create_namespaced_job(NAMESPACE, body, dry_run="All")
    body = client.ApiClient().sanitize_for_serialization(STAGES["generate"](settings("dry-run")))
    body["spec"]["completions"] = -1
    with pytest.raises(ApiException) as refused:
        k8s.batch.create_namespaced_job(NAMESPACE, body, dry_run="All")
    assert refused.value.status == 422 and "completions" in str(refused.value.body)
