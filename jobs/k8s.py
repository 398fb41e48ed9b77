"""Kubernetes Jobs for the stages, built in one place from the settings.

The controller (RUNNER=k8s) submits them; `make manifests` renders the same objects into k8s/
so the YAML never drifts from the code (a test compares them). Images take all settings from
environment variables; these Jobs set them explicitly from the run's resolved settings.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubernetes import client

from jobs.settings import PipelineSettings, ordered_fields, settings_class

APP = "ludus"
SERVICE_ACCOUNT = "ludus-pipeline"  # the controller: may create and watch Jobs
STAGE_SERVICE_ACCOUNT = "ludus-stage"  # stage pods: no API rights; annotate it for workload identity
SETTINGS_CONFIGMAP = "ludus-settings"
STORAGE_SECRET = "ludus-storage"  # optional: AWS_* credentials; workload identity needs none
NON_ROOT_UID = 10001

# Settings a stage pod does not get from the controller: the image sets GENERATOR_BIN, the Job
# sets each pod's index (JOB_COMPLETION_INDEX), and PRESET is already resolved into GAMES and
# EPOCHS.
NOT_PASSED = frozenset({"generator_bin", "shard_index", "train_node_index", "preset"})
RDZV_PORT = 29400  # torchrun's c10d rendezvous, on the first train pod


def stage_settings(task: str, stage: str) -> list[str]:
    """What the stage's process reads: its settings class for the task, less NOT_PASSED."""
    return [name for name in ordered_fields(settings_class(stage, task)) if name not in NOT_PASSED]


def labels(s: PipelineSettings, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": APP,
        "ludus.dev/task": s.task,
        "ludus.dev/run-id": s.run_id,
    }


def job_name(s: PipelineSettings, stage: str) -> str:
    """`ludus-<run id>-<stage>`; when that is over Kubernetes' 63 characters, the run id is cut
    and a hash of the whole id added, so every stage of every run keeps a name of its own."""
    name = f"{APP}-{s.run_id}-{stage}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(s.run_id.encode()).hexdigest()[:8]
    keep = 63 - len(f"{APP}--{digest}-{stage}")
    return f"{APP}-{s.run_id[:keep].rstrip('-.')}-{digest}-{stage}"


def env_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def stage_env(s: PipelineSettings, stage: str, overrides: dict[str, Any] | None = None) -> list[client.V1EnvVar]:
    """The stage's settings as environment variables; `overrides` replace resolved values."""
    values = {**s.model_dump(mode="json"), **(overrides or {})}
    return [client.V1EnvVar(name=name.upper(), value=env_value(values[name])) for name in stage_settings(s.task, stage)]


def credentials() -> list[client.V1EnvFromSource]:
    """AWS_* variables from an optional Secret: absent when the pod uses workload identity."""
    return [client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=STORAGE_SECRET, optional=True))]


def pull_secrets(name: str) -> list[client.V1LocalObjectReference] | None:
    """The registry Secret the kubelet pulls with (a private registry needs one), or none."""
    return [client.V1LocalObjectReference(name=name)] if name else None


def security() -> tuple[client.V1PodSecurityContext, client.V1SecurityContext]:
    """What the `restricted` Pod Security Standard asks, and a read-only root filesystem: the jobs
    write only to the store and to /tmp (`scratch`)."""
    pod = client.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=NON_ROOT_UID,
        run_as_group=NON_ROOT_UID,
        fs_group=NON_ROOT_UID,
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    container = client.V1SecurityContext(
        allow_privilege_escalation=False, read_only_root_filesystem=True, capabilities=client.V1Capabilities(drop=["ALL"])
    )
    return pod, container


def scratch() -> tuple[client.V1Volume, client.V1VolumeMount]:
    """/tmp as an emptyDir: temporary shard files, TensorBoard events, matplotlib's cache."""
    return client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource()), client.V1VolumeMount(name="tmp", mount_path="/tmp")


CONFIG_ERROR_EXIT = 2  # `python -m jobs` refused its settings: another try cannot help


def failure_policy(container: str) -> client.V1PodFailurePolicy:
    """Preempted or evicted pods do not count against the backoff limit; a pod that refused its
    settings fails the Job at once instead of retrying for minutes."""
    return client.V1PodFailurePolicy(
        rules=[
            client.V1PodFailurePolicyRule(
                action="Ignore", on_pod_conditions=[client.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")]
            ),
            client.V1PodFailurePolicyRule(
                action="FailJob",
                on_exit_codes=client.V1PodFailurePolicyOnExitCodesRequirement(container_name=container, operator="In", values=[CONFIG_ERROR_EXIT]),
            ),
        ]
    )


def stage_job(
    s: PipelineSettings,
    stage: str,
    image: str,
    resources: client.V1ResourceRequirements,
    spec: dict[str, Any],
    pod: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    env: dict[str, Any] | None = None,
) -> client.V1Job:
    pod_security, container_security = security()
    tmp_volume, tmp_mount = scratch()
    pod = {**(pod or {}), "volumes": [tmp_volume, *(pod or {}).get("volumes", [])]}
    container = {**(container or {}), "volume_mounts": [tmp_mount, *(container or {}).get("volume_mounts", [])]}
    main = client.V1Container(
        name=stage,
        image=image,
        args=[stage],  # the images' entry point is `python -m jobs`
        env=stage_env(s, stage, env),
        env_from=credentials(),
        resources=resources,
        security_context=container_security,
        **container,
    )
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels(s, stage)),
        spec=client.V1PodSpec(
            restart_policy="Never",
            service_account_name=STAGE_SERVICE_ACCOUNT,
            security_context=pod_security,
            containers=[main],
            image_pull_secrets=pull_secrets(s.image_pull_secret),
            **pod,
        ),
    )
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(name=job_name(s, stage), namespace=s.k8s_namespace, labels=labels(s, stage)),
        spec=client.V1JobSpec(template=template, ttl_seconds_after_finished=s.job_ttl_seconds, pod_failure_policy=failure_policy(stage), **spec),
    )


def cpu_cores(quantity: str) -> int:
    """Whole cores in a CPU quantity ("2", "1.5", "500m"), at least 1: the generator's threads."""
    cores = float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    return max(1, int(cores))


def generate_job(s: PipelineSettings) -> client.V1Job:
    """One pod per shard: an Indexed Job, JOB_COMPLETION_INDEX is the shard index."""
    cpu = {"cpu": s.generate_cpu, "memory": s.generate_memory}
    # Each pod's generator uses the cores it is given, unless THREADS says otherwise.
    threads = s.threads or cpu_cores(s.generate_cpu)
    return stage_job(
        s,
        "generate",
        s.gen_image,
        client.V1ResourceRequirements(requests=cpu, limits=cpu),
        {
            "completion_mode": "Indexed",
            "completions": s.shards,
            "parallelism": s.generate_parallelism or s.shards,
            "backoff_limit_per_index": 3,
            "max_failed_indexes": max(1, s.shards // 10),
        },
        env={"threads": threads},
    )


def rendezvous_endpoint(s: PipelineSettings) -> str:
    """The first train pod's DNS name under the train stage's headless Service, and the port."""
    name = job_name(s, "train")
    return f"{name}-0.{name}:{RDZV_PORT}"


def training_pod(s: PipelineSettings) -> tuple[client.V1ResourceRequirements, dict[str, Any], dict[str, Any]]:
    """(resources, pod fields, container fields) of a pod that trains: TRAIN_CPU, TRAIN_MEMORY,
    TRAIN_GPUS and a shared-memory /dev/shm."""
    requests: dict[str, str] = {"cpu": s.train_cpu, "memory": s.train_memory}
    limits: dict[str, str] = {"memory": s.train_memory}
    pod: dict[str, Any] = {"volumes": [client.V1Volume(name="dshm", empty_dir=client.V1EmptyDirVolumeSource(medium="Memory", size_limit="8Gi"))]}
    container: dict[str, Any] = {"volume_mounts": [client.V1VolumeMount(name="dshm", mount_path="/dev/shm")]}
    if s.train_gpus:
        limits["nvidia.com/gpu"] = str(s.train_gpus)
        pod["tolerations"] = [client.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
    return client.V1ResourceRequirements(requests=requests, limits=limits), pod, container


def train_job(s: PipelineSettings) -> client.V1Job:
    """One pod per node (TRAIN_NODES), each with TRAIN_GPUS; a restarted pod resumes from the
    run's checkpoint in the store. Several nodes make an Indexed Job whose pods find each other
    through a headless Service of the same name (train_service); pod 0 hosts the rendezvous."""
    resources, pod, container = training_pod(s)
    spec: dict[str, Any] = {"backoff_limit": 6}
    env: dict[str, Any] = {}
    if s.train_nodes > 1:
        # One failure stops every node (torchrun without restarts), so each node may fail 6 times.
        spec = {"completion_mode": "Indexed", "completions": s.train_nodes, "parallelism": s.train_nodes, "backoff_limit": 6 * s.train_nodes}
        pod["subdomain"] = job_name(s, "train")
        container["ports"] = [client.V1ContainerPort(container_port=RDZV_PORT, name="rendezvous")]
        env["train_rdzv_endpoint"] = rendezvous_endpoint(s)
    return stage_job(s, "train", s.train_image, resources, spec, pod, container, env)


def trials_job(s: PipelineSettings, first: int, count: int) -> client.V1Job:
    """`count` trials of a sweep, from trial `first` on: an Indexed Job of the trainer image whose
    pod i trains trial first + i (`python -m jobs trial`), each pod like a one-node train pod.
    A trial that fails does not stop the others (a backoff limit per index)."""
    resources, pod, container = training_pod(s)
    spec = {"completion_mode": "Indexed", "completions": count, "parallelism": count, "backoff_limit_per_index": 2, "max_failed_indexes": count}
    env = {"sweep_trial": first, "train_nodes": 1, "train_rdzv_endpoint": ""}
    job = stage_job(s, "trial", s.train_image, resources, spec, pod, container, env)
    metadata = job.metadata
    assert metadata is not None
    metadata.name = job_name(s, f"trials-{first}")
    return job


def train_service(s: PipelineSettings, job_uid: str | None = None) -> client.V1Service:
    """The headless Service that gives each train pod a DNS name (`<job>-<index>.<job>`), owned
    by the train Job so that it goes when the Job goes."""
    name = job_name(s, "train")
    owners = [client.V1OwnerReference(api_version="batch/v1", kind="Job", name=name, uid=job_uid)] if job_uid else None
    return client.V1Service(
        api_version="v1",
        kind="Service",
        metadata=client.V1ObjectMeta(name=name, namespace=s.k8s_namespace, labels=labels(s, "train"), owner_references=owners),
        spec=client.V1ServiceSpec(
            cluster_ip="None",
            selector={"batch.kubernetes.io/job-name": name},
            publish_not_ready_addresses=True,  # names before readiness: the pods meet while starting
            ports=[client.V1ServicePort(name="rendezvous", port=RDZV_PORT, target_port=RDZV_PORT)],
        ),
    )


def evaluate_job(s: PipelineSettings) -> client.V1Job:
    cpu = {"cpu": s.evaluate_cpu, "memory": s.evaluate_memory}
    return stage_job(s, "evaluate", s.train_image, client.V1ResourceRequirements(requests=cpu, limits=cpu), {"backoff_limit": 3})


STAGES = {"generate": generate_job, "train": train_job, "evaluate": evaluate_job}


def to_dict(obj: Any) -> dict[str, Any]:
    return client.ApiClient().sanitize_for_serialization(obj)
