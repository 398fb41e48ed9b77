"""Kubernetes without a cluster: manifests rendered from code, valid against the real schemas and
our rules, and the controller's checks that need no API server. What needs one (the controller
driving the stages as real Jobs, RBAC, Pod Security, the Job controller's retries) runs on a
real cluster in tests/cluster/ (`make test-k8s`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.errors import ConfigError
from jobs.k8s import to_dict
from jobs.manifests import K8S
from jobs.manifests import main as render_main
from jobs.pipeline import run_pipeline
from jobs.settings import PipelineSettings, all_setting_names, settings_class
from jobs.tasks import REGISTRY
from tests.conftest import run_job, tool

KNOWN_VARIABLES = {name.upper() for name in all_setting_names()} | {"LEASE_OWNER"}  # the lease owner: jobs/runs.py
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def manifest_files(folder: Path = K8S) -> list[Path]:
    return sorted(folder.rglob("*.yaml"))


def documents(folder: Path = K8S) -> list[dict[str, Any]]:
    return [doc for path in manifest_files(folder) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_k8s_has_the_shared_files_on_top_and_a_folder_per_task_of_the_registry() -> None:
    assert sorted(p.name for p in K8S.glob("*.yaml")) == ["00-namespace.yaml", "10-rbac.yaml"]
    assert sorted(p.name for p in K8S.iterdir() if p.is_dir()) == sorted(REGISTRY), "k8s/<task>/ for every task, nothing else"
    for task in REGISTRY:
        kinds = [d["kind"] for d in documents(K8S / task)]
        assert "Namespace" not in kinds and "Role" not in kinds, f"k8s/{task}/ repeats the shared files"
        config = next(d for d in documents(K8S / task) if d["kind"] == "ConfigMap")
        assert config["data"]["TASK"] == task


def test_rendered_manifests_equal_what_the_code_builds() -> None:
    assert render_main(["--check"]) == 0, "k8s/ drifted from jobs/k8s.py: run `make manifests`"


def test_manifests_pass_strict_schema_validation() -> None:
    files = [str(p) for p in manifest_files()]
    out = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_top_level_files_are_plain_manifests() -> None:
    for path in sorted(K8S.glob("*")):
        if path.is_file():
            for doc in yaml.safe_load_all(path.read_text()):
                assert doc.get("apiVersion") and doc.get("kind"), f"{path.name} is not a plain manifest"
                assert doc["kind"] not in ("Kustomization", "Secret"), f"{path.name}: no {doc['kind']} at the top of k8s/"


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"] if doc["kind"] == "Job" else []


def test_our_rules_names_labels_enums_and_settings() -> None:
    for doc in documents():
        meta = doc["metadata"]
        assert DNS_1123.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
        assert meta["labels"]["app.kubernetes.io/name"] == "ludus", meta["name"]
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) <= KNOWN_VARIABLES, set(doc["data"]) - KNOWN_VARIABLES
        if doc["kind"] != "Job":
            continue
        spec, pod = doc["spec"], doc["spec"]["template"]["spec"]
        assert pod["restartPolicy"] in ("Never", "OnFailure")
        assert spec.get("completionMode", "NonIndexed") in ("Indexed", "NonIndexed")
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert "ttlSecondsAfterFinished" in spec
        for rule in spec.get("podFailurePolicy", {}).get("rules", []):
            assert rule["action"] in ("Ignore", "FailJob", "Count", "FailIndex")
            assert all(c["type"] == "DisruptionTarget" for c in rule.get("onPodConditions", []))
        for toleration in pod.get("tolerations", []):
            assert toleration["operator"] in ("Exists", "Equal") and toleration["effect"] in ("NoSchedule", "PreferNoSchedule", "NoExecute")
        for c in containers(doc):
            names = {e["name"] for e in c.get("env", [])}
            assert names <= KNOWN_VARIABLES, f"{meta['name']}: unknown variables {names - KNOWN_VARIABLES}"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_each_stage_job_gets_exactly_its_stages_settings() -> None:
    from jobs.k8s import STAGES
    from jobs.manifests import example_settings

    s = example_settings()
    for stage, build in STAGES.items():
        names = [e.name for e in build(s).spec.template.spec.containers[0].env]
        not_passed = ("generator_bin", "shard_index", "train_node_index", "preset")
        wanted = [name for name in settings_class(stage, s.task).model_fields if name not in not_passed]
        assert sorted(names) == sorted(name.upper() for name in wanted), stage
    generate = {e.name for e in STAGES["generate"](s).spec.template.spec.containers[0].env}
    assert "DEPTH" in generate and "EPOCHS" not in generate and "SOFT_POLICY_TEMPERATURE" not in generate


def by_component(task: str = "ur") -> dict[str, dict[str, Any]]:
    jobs = [d for d in documents(K8S / task) if d["kind"] == "Job" and "subdomain" not in d["spec"]["template"]["spec"]]
    return {d["metadata"]["labels"].get("app.kubernetes.io/component"): d for d in jobs}


def test_stage_jobs_have_what_the_cluster_needs() -> None:
    jobs = by_component()
    gen = jobs["generate"]["spec"]
    assert gen["completionMode"] == "Indexed" and gen["completions"] == 8 and gen["parallelism"] == 8
    assert gen["backoffLimitPerIndex"] >= 1 and gen["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    resources = gen["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "4"
    train = jobs["train"]["spec"]["template"]["spec"]
    assert train["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert train["tolerations"][0]["key"] == "nvidia.com/gpu"
    shm = next(v for v in train["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in train["containers"][0]["volumeMounts"]
    assert "nvidia.com/gpu" not in str(jobs["evaluate"]) and "nvidia.com/gpu" not in str(jobs["generate"])
    pipeline = jobs["pipeline"]["spec"]["template"]["spec"]
    assert pipeline["serviceAccountName"] == "ludus-pipeline"
    env = {e["name"]: e for e in pipeline["containers"][0]["env"]}
    assert env["RUNNER"]["value"] == "k8s" and "controller-uid" in env["RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"]


def test_rbac_is_least_privilege() -> None:
    role = next(d for d in documents() if d["kind"] == "Role")
    verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    # Exactly what jobs/cluster.py calls: create, read (and read the status of) and delete Jobs,
    # and the same for the Service of a train stage on several nodes.
    assert verbs == {("batch", "jobs"): {"create", "get", "delete"}, ("batch", "jobs/status"): {"get"}, ("", "services"): {"create", "get", "delete"}}


def cluster_settings(run_id: str, **overrides: object) -> PipelineSettings:
    values: dict[str, object] = {
        "storage_url": "s3://cluster/ludus", "run_id": run_id, "runner": "k8s", "games": 12, "shards": 2, "epochs": 2,
        "depth": 1, "batch_size": 256, "eval_games": 20, "device": "cpu", "train_gpus": 0,
    }  # fmt: skip
    values.update(overrides)
    return settings_class("pipeline", "ur").model_validate(values)


def test_k8s_needs_an_object_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pods cannot see this machine's folders"):
        run_pipeline(cluster_settings("x", storage_url=str(tmp_path)), api=object())  # refused before any call


def test_k8s_without_a_context_is_a_clear_error(tmp_path: Path, s3_env: dict[str, str]) -> None:
    result = run_job("pipeline", timeout=120, RUNNER="k8s", STORAGE_URL="s3://any/x", KUBECONFIG=tmp_path / "none", GAMES=2, SHARDS=1)
    assert result.returncode == 2
    assert "RUNNER='k8s': no Kubernetes context" in result.stderr, result.stderr


def test_long_run_ids_give_every_stage_its_own_name() -> None:
    from jobs.k8s import STAGES, job_name

    for length in (56, 60, 63):
        s = cluster_settings("r" * (length - 4) + "-abc")
        names = {job_name(s, stage) for stage in STAGES}
        assert len(names) == 3 and all(len(n) <= 63 and DNS_1123.match(n) for n in names), names
    assert job_name(cluster_settings("short-run"), "train") == "ludus-short-run-train", "short ids keep their names"


def test_every_pod_meets_the_restricted_standard_with_a_read_only_root() -> None:
    ns = next(d for d in documents() if d["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    jobs = [d for d in documents() if d["kind"] == "Job"]
    assert len(jobs) == 5 * len(REGISTRY) + 1, "per task the pipeline Job, three stage Jobs and the 2-node train Job; Ur's solve Job"
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, job["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        tmp = [v["name"] for v in pod["volumes"] if "emptyDir" in v]
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c["volumeMounts"]), "a writable /tmp"


def test_a_train_stage_on_several_nodes_is_an_indexed_job_behind_a_headless_service() -> None:
    """TRAIN_NODES=2: one pod per node, each named under a headless Service of the Job's name, the
    rendezvous at pod 0; the rendered example in k8s/<task>/stages/ is what the code builds."""
    from jobs.k8s import RDZV_PORT, job_name, train_job, train_service
    from jobs.manifests import example_settings

    s = example_settings().model_copy(update={"train_nodes": 2})
    name = job_name(s, "train")
    job, service = to_dict(train_job(s)), to_dict(train_service(s, "uid-1"))
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    assert pod["subdomain"] == name == service["metadata"]["name"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["TRAIN_NODES"] == "2" and env["TRAIN_RDZV_ENDPOINT"] == f"{name}-0.{name}:{RDZV_PORT}"
    assert "TRAIN_NODE_INDEX" not in env, "each pod takes its index from JOB_COMPLETION_INDEX"
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": name}
    assert service["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": "uid-1"}]
    one = to_dict(train_job(example_settings()))
    assert "completionMode" not in one["spec"] and "subdomain" not in one["spec"]["template"]["spec"]
    rendered = list(yaml.safe_load_all((K8S / "ur" / "stages" / "train-2-nodes.yaml").read_text()))
    assert [d["kind"] for d in rendered] == ["Job", "Service"]
