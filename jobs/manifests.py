"""Renders k8s/ from the code that builds the Jobs: `python -m jobs.manifests [--check]`.

The top-level files are what every task shares (`kubectl apply -f k8s/`: the namespace, the
service accounts and RBAC). Each task of the registry gets a folder, k8s/<task>/, whose
ConfigMap and pipeline Job start a run (`kubectl apply -f k8s/<task>/`); its stages/ holds the
stage Jobs the controller creates, rendered with the ConfigMap's settings, for review.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from jobs.k8s import (
    APP,
    SERVICE_ACCOUNT,
    SETTINGS_CONFIGMAP,
    STAGE_SERVICE_ACCOUNT,
    STAGES,
    credentials,
    failure_policy,
    pull_secrets,
    scratch,
    security,
    to_dict,
    train_job,
    train_service,
)
from jobs.settings import PipelineSettings, settings_class
from jobs.tasks import DEFAULT_TASK, REGISTRY

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
HEADER = "# Rendered by `make manifests` from jobs/k8s.py and jobs/manifests.py: edit those, not this file.\n"

# What a cluster run starts with; edit the task's ConfigMap (k8s/<task>/20-settings.yaml)
# before applying. A task adds its own values in its registry entry (TaskSpec.cluster_settings).
COMMON_CLUSTER_SETTINGS: dict[str, str] = {
    "STORAGE_URL": "s3://CHANGE-ME-bucket/ludus",
    "PRESET": "production",
    "SHARDS": "8",
    "GENERATE_PARALLELISM": "8",
    "GENERATE_CPU": "4",
    "TRAIN_GPUS": "1",
    "K8S_NAMESPACE": "ludus",
    "GEN_IMAGE": "ghcr.io/ludus-ai/ludus-gen:0.1.0",
    "TRAIN_IMAGE": "ghcr.io/ludus-ai/ludus-train:0.1.0",
    # A private registry's credentials: `kubectl -n ludus create secret docker-registry
    # ludus-registry ...`. With a public registry and no such Secret, the kubelet notes the
    # missing Secret in an event and pulls anyway.
    "IMAGE_PULL_SECRET": "ludus-registry",
}


def cluster_settings(task: str) -> dict[str, str]:
    own = REGISTRY[task].cluster_settings
    return {"STORAGE_URL": COMMON_CLUSTER_SETTINGS["STORAGE_URL"], "TASK": task, **COMMON_CLUSTER_SETTINGS, **own}


CLUSTER_SETTINGS = cluster_settings(DEFAULT_TASK)
EXAMPLE_RUN_ID = "example-run"


def namespace(name: str) -> dict[str, Any]:
    # The API server refuses any pod of the namespace that breaks the restricted standard.
    labels = {"app.kubernetes.io/name": APP, "pod-security.kubernetes.io/enforce": "restricted"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def rbac(ns: str) -> list[dict[str, Any]]:
    """The controller may create, read and delete Jobs (it replaces a stage Job that failed in an
    earlier attempt) and the train stage's Service in its namespace; nothing else. Stage pods get
    no API rights."""
    meta = {"namespace": ns, "labels": {"app.kubernetes.io/name": APP}}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, **meta}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": STAGE_SERVICE_ACCOUNT, **meta},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": SERVICE_ACCOUNT, **meta},
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "delete"]},
                {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get"]},
                # the headless Service of a train stage on several nodes (TRAIN_NODES > 1)
                {"apiGroups": [""], "resources": ["services"], "verbs": ["create", "get", "delete"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": SERVICE_ACCOUNT, **meta},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
        },
    ]


def settings_configmap(ns: str, settings: dict[str, str]) -> dict[str, Any]:
    meta = {"name": SETTINGS_CONFIGMAP, "namespace": ns, "labels": {"app.kubernetes.io/name": APP}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(settings)}


def pipeline_job(ns: str) -> dict[str, Any]:
    """The small CPU controller: runs the pipeline with RUNNER=k8s, one stage Job at a time.
    RUN_ID is this Job's uid, so a restarted controller pod resumes the same run."""
    pod_security, container_security = security()
    tmp_volume, tmp_mount = scratch()
    run_id = client.V1EnvVarSource(field_ref=client.V1ObjectFieldSelector(field_path="metadata.labels['batch.kubernetes.io/controller-uid']"))
    container = client.V1Container(
        name="pipeline",
        image=CLUSTER_SETTINGS["TRAIN_IMAGE"],
        args=["pipeline"],
        # A restarted pod of this Job is the same lease owner: it takes its run's lease back at once.
        env=[
            client.V1EnvVar(name="RUNNER", value="k8s"),
            client.V1EnvVar(name="RUN_ID", value_from=run_id),
            client.V1EnvVar(name="LEASE_OWNER", value_from=run_id),
        ],
        env_from=[client.V1EnvFromSource(config_map_ref=client.V1ConfigMapEnvSource(name=SETTINGS_CONFIGMAP)), *credentials()],
        resources=client.V1ResourceRequirements(requests={"cpu": "250m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "1Gi"}),
        security_context=container_security,
        volume_mounts=[tmp_mount],
    )
    job_labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "pipeline", "app.kubernetes.io/part-of": APP}
    job = client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(name=f"{APP}-pipeline", namespace=ns, labels=job_labels),
        spec=client.V1JobSpec(
            backoff_limit=3,
            ttl_seconds_after_finished=86400,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=job_labels),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    service_account_name=SERVICE_ACCOUNT,
                    security_context=pod_security,
                    containers=[container],
                    volumes=[tmp_volume],
                    image_pull_secrets=pull_secrets(CLUSTER_SETTINGS["IMAGE_PULL_SECRET"]),
                ),
            ),
        ),
    )
    return to_dict(job)


def solve_job(ns: str) -> dict[str, Any]:
    """Solves Ur once into the store of the ConfigMap (`{task}/solution/`); not part of a run, so
    it lives in k8s/ur/optional/, which `kubectl apply -f k8s/ur/` does not read. A rerun finds the
    table and exits; a preempted pod does not count against the backoff."""
    pod_security, container_security = security()
    tmp_volume, tmp_mount = scratch()
    container = client.V1Container(
        name="solve",
        image=CLUSTER_SETTINGS["GEN_IMAGE"],
        args=["solve"],
        env=[client.V1EnvVar(name="TASK", value="ur"), client.V1EnvVar(name="PIECES", value="7"), client.V1EnvVar(name="THREADS", value="16")],
        env_from=[client.V1EnvFromSource(config_map_ref=client.V1ConfigMapEnvSource(name=SETTINGS_CONFIGMAP)), *credentials()],
        # 137.9 million positions: 1.1 GB of values plus the layer being solved.
        resources=client.V1ResourceRequirements(requests={"cpu": "16", "memory": "4Gi"}, limits={"cpu": "16", "memory": "6Gi"}),
        security_context=container_security,
        volume_mounts=[tmp_mount],
    )
    job_labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "solve", "app.kubernetes.io/part-of": APP, "ludus.dev/task": "ur"}
    job = client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(name=f"{APP}-ur-solve", namespace=ns, labels=job_labels),
        spec=client.V1JobSpec(
            backoff_limit=2,
            pod_failure_policy=failure_policy("solve"),
            ttl_seconds_after_finished=86400,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=job_labels),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    service_account_name=STAGE_SERVICE_ACCOUNT,
                    automount_service_account_token=False,
                    security_context=pod_security,
                    containers=[container],
                    volumes=[tmp_volume],
                    image_pull_secrets=pull_secrets(CLUSTER_SETTINGS["IMAGE_PULL_SECRET"]),
                ),
            ),
        ),
    )
    return to_dict(job)


def example_settings(task: str = DEFAULT_TASK) -> PipelineSettings:
    values = {k.lower(): v for k, v in cluster_settings(task).items()}
    settings = settings_class("pipeline", task).model_validate({**values, "run_id": EXAMPLE_RUN_ID, "runner": "k8s"})
    assert isinstance(settings, PipelineSettings)
    return settings


def folder_of(task: str) -> Path:
    """`kubectl apply -f k8s/<task>/` starts a run of the task (after `kubectl apply -f k8s/`)."""
    return K8S / task


def rendered() -> dict[Path, str]:
    """Every file of k8s/ and its text."""
    ns = CLUSTER_SETTINGS["K8S_NAMESPACE"]

    def dump(*docs: dict[str, Any]) -> str:
        return HEADER + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)

    files = {K8S / "00-namespace.yaml": dump(namespace(ns)), K8S / "10-rbac.yaml": dump(*rbac(ns))}
    for task in REGISTRY:
        folder = folder_of(task)
        files[folder / "20-settings.yaml"] = dump(settings_configmap(ns, cluster_settings(task)))
        files[folder / "30-pipeline-job.yaml"] = dump(pipeline_job(ns))
        s = example_settings(task)
        for stage, build in STAGES.items():
            files[folder / "stages" / f"{stage}.yaml"] = dump(to_dict(build(s)))
        # TRAIN_NODES=2: what the controller creates for a train stage of two nodes.
        two = s.model_copy(update={"train_nodes": 2})
        files[folder / "stages" / "train-2-nodes.yaml"] = dump(to_dict(train_job(two)), to_dict(train_service(two)))
    files[folder_of("ur") / "optional" / "solve-job.yaml"] = dump(solve_job(ns))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.manifests", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if k8s/ differs from what the code renders")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"k8s/ is out of date ({', '.join(stale)}): run `make manifests`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
