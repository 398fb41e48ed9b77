"""The cluster session: our two images built with podman (tests/containers.py), a real cluster
started with them imported into containerd (tests/cluster/cluster.py), and the session's S3
server (SeaweedFS on this machine's loopback) exposed to the pods at NODE_IP:S3_PORT."""

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

from tests.cluster import cluster
from tests.conftest import S3_KEY, S3_SECRET, make_bucket
from tests.containers import GEN, TRAIN, bases, images, podman  # noqa: F401 (fixtures)

S3_PORT = 8333  # where pods reach the store: http://NODE_IP:8333
FIGURES = Path(__file__).resolve().parents[2] / "docs" / "results" / "ci" / "cluster.json"


@dataclass
class Cluster:
    kubeconfig: Path
    batch: client.BatchV1Api
    core: client.CoreV1Api
    s3_in_cluster: str  # the store's endpoint as pods see it
    figures: dict[str, Any]

    def kubectl(self, *args: object, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(cluster.BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}", *map(str, args)]
        result = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=300, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def record(self, **figures: Any) -> None:
        """Figures for docs/results/ci/cluster.json (written at the end of the session)."""
        self.figures.update(figures)


# For working on these tests: LUDUS_K8S_REUSE=1 keeps the cluster (and its imported images) after
# the session and uses a running one, with its `ludus` namespace deleted, instead of a new one.
REUSE = os.environ.get("LUDUS_K8S_REUSE") == "1"


@pytest.fixture(scope="session")
def cluster_images(request: pytest.FixtureRequest) -> dict[str, float]:
    """Our images, built with podman unless a reused cluster has them already."""
    if REUSE and cluster.is_up() and cluster.has_images([GEN, TRAIN]):
        return {}
    return request.getfixturevalue("images")


@pytest.fixture(scope="session")
def k8s(cluster_images: dict[str, float], s3_server: str) -> Iterator[Cluster]:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    reused = REUSE and cluster.is_up() and cluster.has_images([GEN, TRAIN])
    try:
        figures: dict[str, Any] = dict(cluster_images)
        if reused:
            cluster.reset_namespace("ludus")
        else:
            cluster.build()
            figures |= cluster.up([GEN, TRAIN])
            # The images now live in containerd; podman's copies go (the trainer's is 6 GB).
            subprocess.run(["podman", "rmi", "--force", GEN, TRAIN], capture_output=True, check=False)
        port = urlparse(s3_server).port
        assert port is not None
        cluster.expose("s3", port, S3_PORT)
        api = config.new_client_from_config(str(cluster.ADMIN_KUBECONFIG))
        figures["kubernetes"] = cluster.VERSION
        yield Cluster(cluster.ADMIN_KUBECONFIG, client.BatchV1Api(api), client.CoreV1Api(api), f"http://{cluster.NODE_IP}:{S3_PORT}", figures)
        if not reused:
            FIGURES.parent.mkdir(parents=True, exist_ok=True)
            FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures))
    finally:
        if not REUSE:
            cluster.down()


def storage_secret(k8s: Cluster) -> dict[str, str]:
    """What a user puts in the ludus-storage Secret: credentials and the store's endpoint."""
    return {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_ENDPOINT_URL": k8s.s3_in_cluster, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def store_env(s3_env: dict[str, str]) -> dict[str, str]:
    make_bucket("cluster")
    return s3_env
