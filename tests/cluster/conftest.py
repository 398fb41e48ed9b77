"""The cluster session: our two images built with podman (tests/containers.py) and pushed to a
real registry with TLS and a password (tests/cluster/registry.py), a real cluster whose kubelet
pulls them with an image pull secret (tests/cluster/cluster.py), and the session's S3 server
(SeaweedFS on this machine's loopback) exposed to the pods at NODE_IP:S3_PORT."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from kubernetes import client, config

from tests.cluster import cluster, registry
from tests.conftest import S3_KEY, S3_SECRET, make_bucket
from tests.containers import GEN as SOURCE_GEN
from tests.containers import TRAIN as SOURCE_TRAIN
from tests.containers import bases, images, podman  # noqa: F401 (fixtures)

S3_PORT = 8333  # where pods reach the store: http://NODE_IP:8333
FIGURES = Path(__file__).resolve().parents[2] / "docs" / "results" / "ci" / "cluster.json"


@dataclass
class Cluster:
    kubeconfig: Path
    batch: client.BatchV1Api
    core: client.CoreV1Api
    s3_in_cluster: str  # the store's endpoint as pods see it
    figures: dict[str, Any]
    oci: registry.Registry  # where the pods pull our images from

    def kubectl(self, *args: object, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(cluster.BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}", *map(str, args)]
        result = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=300, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def record(self, **figures: Any) -> None:
        """Figures for docs/results/ci/cluster.json (written at the end of the session)."""
        self.figures.update(figures)


# For working on these tests: LUDUS_K8S_REUSE=1 keeps the cluster and the registry (with its
# images) after the session and uses running ones, with the `ludus` namespace deleted.
REUSE = os.environ.get("LUDUS_K8S_REUSE") == "1"
# Our images as the cluster pulls them: pushed to the session's registry.
GEN = f"{registry.HOST}/ludus-test-gen:test"
TRAIN = f"{registry.HOST}/ludus-test-train:test"
PULL_SECRET = "ludus-registry"


def reusable() -> registry.Registry | None:
    """The running registry and cluster of an earlier LUDUS_K8S_REUSE=1 session, if both are up."""
    saved = registry.STATE / "session.json"
    if not (REUSE and cluster.is_up() and saved.exists()):
        return None
    found = registry.Registry(**{k: (Path(v) if k == "ca" else v) for k, v in json.loads(saved.read_text()).items()})
    try:
        return found if found.tags("ludus-test-train") == ["test"] and found.tags("ludus-test-gen") == ["test"] else None
    except OSError:
        return None


@pytest.fixture(scope="session")
def pushed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[registry.Registry, dict[str, float]]]:
    """Our images built with podman (tests/containers.py) and pushed to a registry with TLS and a
    password: the way a user's cluster gets them. The podman copies stay for the session (the
    retrain workflow's build reuses their layers)."""
    found = reusable()
    if found is not None:
        yield found, {}
        return
    figures = dict(request.getfixturevalue("images"))
    try:
        reg = registry.start()
        auth = tmp_path_factory.mktemp("registry-auth") / "auth.json"
        reg.login(auth)
        figures["push_gen_seconds"] = round(registry.push(reg, SOURCE_GEN, GEN.split("/", 1)[1], auth), 1)
        figures["push_train_seconds"] = round(registry.push(reg, SOURCE_TRAIN, TRAIN.split("/", 1)[1], auth), 1)
        (registry.STATE / "session.json").write_text(json.dumps({"password": reg.password, "ca": str(reg.ca)}))
        yield reg, figures
    finally:
        if not REUSE:
            registry.stop()
        # What the retrain workflow built here, tagged for the registry (6 GB, mostly layers
        # shared with our images, which the images fixture removes).
        tagged = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=False)
        ours = [name for name in tagged.stdout.split() if name.startswith(f"{registry.HOST}/")]
        if ours:
            subprocess.run(["podman", "rmi", "--force", *ours], capture_output=True, check=False)


@pytest.fixture(scope="session")
def k8s(pushed: tuple[registry.Registry, dict[str, float]], s3_server: str) -> Iterator[Cluster]:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    reg, pushed_figures = pushed
    reused = REUSE and cluster.is_up() and not pushed_figures
    try:
        figures: dict[str, Any] = dict(pushed_figures)
        if reused:
            cluster.reset_namespace("ludus")
        else:
            cluster.build()
            figures |= cluster.up()
        cluster.trust_registry(registry.HOST, reg.ca)
        cluster.expose("registry", registry.PORT, registry.PORT, bind="127.0.0.1")
        port = urlparse(s3_server).port
        assert port is not None
        cluster.expose("s3", port, S3_PORT)
        api = config.new_client_from_config(str(cluster.ADMIN_KUBECONFIG))
        figures["kubernetes"] = cluster.VERSION
        yield Cluster(cluster.ADMIN_KUBECONFIG, client.BatchV1Api(api), client.CoreV1Api(api), f"http://{cluster.NODE_IP}:{S3_PORT}", figures, reg)
        if not reused:
            FIGURES.parent.mkdir(parents=True, exist_ok=True)
            FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures))
    finally:
        if not REUSE:
            cluster.down()


def pull_secret(k8s: Cluster, namespace: str = "ludus") -> None:
    """The image pull secret a user creates (`kubectl create secret docker-registry`), once."""
    found = k8s.kubectl("-n", namespace, "get", "secret", PULL_SECRET, check=False)
    if found.returncode != 0:
        k8s.kubectl("-n", namespace, "create", "secret", "generic", PULL_SECRET, "--type=kubernetes.io/dockerconfigjson",
                    "--from-file=.dockerconfigjson=/dev/stdin", stdin=k8s.oci.dockerconfigjson())  # fmt: skip


def storage_secret(k8s: Cluster) -> dict[str, str]:
    """What a user puts in the ludus-storage Secret: credentials and the store's endpoint."""
    return {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_ENDPOINT_URL": k8s.s3_in_cluster, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def store_env(s3_env: dict[str, str]) -> dict[str, str]:
    make_bucket("cluster")
    return s3_env
