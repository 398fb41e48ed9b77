"""A real OCI registry for the cluster tests: CNCF Distribution's `registry`, built from the Go
module proxy like the Kubernetes binaries, serving TLS from a CA made here and asking for a
password (htpasswd, bcrypt). The images go there with `podman push`; the cluster's containerd
pulls them with the pods' image pull secret and trusts the CA through its `certs.d` (see
cluster.trust_registry). Also builds `act`, which runs the retrain workflow in tests/cluster.

The registry listens on this machine's 127.0.0.1:PORT; the cluster reaches it at the same
address inside its network namespace (a socat bridge, cluster.expose), so one image name works
for podman here and for the kubelet there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from tests.cluster.cluster import CACHE, ClusterError, log, sh, stop_pids, tool

PORT = 5443
HOST = f"127.0.0.1:{PORT}"
USER = "ludus-ci"
STATE = CACHE / "registry"
PODMAN_TRUST = Path("/etc/containers/certs.d") / HOST  # what podman (and so `docker push`) trusts


@dataclass
class Registry:
    password: str
    ca: Path

    def auth(self) -> str:
        return base64.b64encode(f"{USER}:{self.password}".encode()).decode()

    def get(self, path: str, accept: str = "application/json") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"https://{HOST}{path}", headers={"Authorization": f"Basic {self.auth()}", "Accept": accept})
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.get(f"/v2/{repository}/tags/list")
        return (json.loads(body).get("tags") or []) if status == 200 else []

    def digest(self, repository: str, tag: str) -> str:
        """The manifest digest the registry serves for repository:tag (what a pull records)."""
        accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
        status, headers, body = self.get(f"/v2/{repository}/manifests/{tag}", accept)
        if status != 200:
            raise AssertionError(f"{HOST}/{repository}:{tag}: {status} {body[:300]!r}")
        return {k.lower(): v for k, v in headers.items()}["docker-content-digest"]

    def dockerconfigjson(self) -> str:
        """The content of a kubernetes.io/dockerconfigjson Secret for this registry."""
        return json.dumps({"auths": {HOST: {"username": USER, "password": self.password, "auth": self.auth()}}})

    def login(self, auth_file: Path) -> None:
        """`podman login` into auth_file (REGISTRY_AUTH_FILE), the password on stdin."""
        result = subprocess.run(
            ["podman", "login", "--authfile", str(auth_file), "--username", USER, "--password-stdin", HOST],
            input=self.password, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ClusterError(f"podman login {HOST} failed: {result.stderr.strip()}")


def certificates(pki: Path) -> Path:
    """A CA and the registry's certificate for 127.0.0.1 (openssl); returns the CA file."""
    pki.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", pki / "ca.key", "-out", pki / "ca.crt", "-days", "7", "-subj", "/CN=ludus-test-registry-ca")
    sh("openssl", "req", "-new", *ec, "-keyout", pki / "registry.key", "-out", pki / "registry.csr", "-subj", "/CN=127.0.0.1")
    (pki / "registry.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    sh("openssl", "x509", "-req", "-in", pki / "registry.csr", "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key", "-CAcreateserial",
       "-days", "7", "-extfile", pki / "registry.ext", "-out", pki / "registry.crt")  # fmt: skip
    return pki / "ca.crt"


def config(pki: Path) -> Path:
    text = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(STATE / "data")}, "delete": {"enabled": True}},
        "http": {"addr": HOST, "tls": {"certificate": str(pki / "registry.crt"), "key": str(pki / "registry.key")}},
        "auth": {"htpasswd": {"realm": "ludus-test", "path": str(STATE / "htpasswd")}},
    }
    path = STATE / "config.yml"
    path.write_text(json.dumps(text, indent=2))  # JSON is YAML
    return path


def stop() -> None:
    pid_file = STATE / "registry.pid"
    if pid_file.exists():
        stop_pids([int(pid_file.read_text())])
        pid_file.unlink()
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(PODMAN_TRUST)


def start() -> Registry:
    """A fresh registry (any earlier one stopped, its data gone), podman trusting its CA."""
    binary = tool("registry")
    stop()
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    password = secrets.token_urlsafe(18)
    (STATE / "htpasswd").write_text(f"{USER}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}\n")
    ca = certificates(STATE / "pki")
    with open(STATE / "registry.log", "ab") as out:
        proc = subprocess.Popen([str(binary), "serve", str(config(STATE / "pki"))], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    (STATE / "registry.pid").write_text(str(proc.pid))
    registry = Registry(password, ca)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise ClusterError(f"the registry exited ({proc.returncode}): {(STATE / 'registry.log').read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if registry.get("/v2/")[0] == 200:
                break
        if time.monotonic() > deadline:
            raise ClusterError(f"the registry did not answer on {HOST} in 30 s; log: {STATE / 'registry.log'}")
        time.sleep(0.2)
    PODMAN_TRUST.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, PODMAN_TRUST / "ca.crt")
    log(f"registry on https://{HOST} (user {USER})")
    return registry


def push(registry: Registry, image: str, target: str, auth_file: Path) -> float:
    """`podman push` of a local image to HOST/target; returns seconds."""
    started = time.monotonic()
    result = subprocess.run(["podman", "push", "--authfile", str(auth_file), image, f"{HOST}/{target}"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"podman push {image} {HOST}/{target} failed: {result.stderr.strip()[-2000:]}")
    return time.monotonic() - started
