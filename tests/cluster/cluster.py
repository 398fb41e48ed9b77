"""A real single-node Kubernetes cluster on this machine, for the tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, a kubelet and containerd with runc.

    python -m tests.cluster.cluster build   # the Kubernetes binaries (Go module proxy), once
    python -m tests.cluster.cluster up      # start (stops a previous one first); pods pull their images
    python -m tests.cluster.cluster down    # stop every process by its PID, unmount everything
    python -m tests.cluster.cluster env     # KUBECONFIG=... for kubectl and `make job RUNNER=k8s`

Why a network namespace: the namespace our pods run in enforces the `restricted` Pod Security
Standard, which refuses both `hostNetwork` and `hostPath`; so pods need a network of their own
that reaches the API server and the store. The cluster's processes run in a network namespace
of their own (`ludus-k8s`); pods get real veth interfaces on a bridge inside it (the bridge CNI
plugin). Two addresses live on that namespace's loopback: the node's (NODE_IP) and the
`kubernetes` Service's cluster IP (SERVICE_IP), on which the API server listens directly (port
443), so in-cluster clients work without kube-proxy. Nothing in that namespace can reach
anything else. This machine reaches the cluster only through Unix sockets bridged by socat: the
API server on 127.0.0.1:API_PORT, and any loopback port exposed to pods at NODE_IP (the S3
server of the tests) or to containerd at 127.0.0.1 (the registry the images are pulled from,
tests/cluster/registry.py; containerd trusts its CA through certs.d, trust_registry).

Everything is kept under CACHE (outside the clone, so later runs are warm): the built binaries
and the Go caches, and the running cluster's state in CACHE/run, cleared on every `up`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("LUDUS_K8S_CACHE", "/var/tmp/ludus-k8s"))
VERSION = "v1.36.3"  # one pinned Kubernetes version; tests/cluster/kube/go.mod requires the same
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")
BIN = CACHE / f"bin-{VERSION}"
RUN = CACHE / "run"
NETNS = "ludus-k8s"
NETNS_PATH = Path("/run/netns") / NETNS
NODE_NAME = "ludus-node"
NODE_IP = "10.200.0.1"  # on the cluster namespace's loopback; never reached from outside it
SERVICE_RANGE, SERVICE_IP = "10.96.0.0/24", "10.96.0.1"
DNS_IP, CLUSTER_DOMAIN = "10.96.0.10", "cluster.local"  # CoreDNS, on the namespace's loopback too
POD_SUBNET, POD_GATEWAY = "10.85.0.0/24", "10.85.0.1"
API_PORT = 16443  # this machine's loopback -> the API server
PAUSE_IMAGE = "localhost/ludus-pause:1"
CONTAINERD_SOCKET = RUN / "containerd" / "containerd.sock"
REGISTRY_HOSTS = RUN / "certs.d"
ADMIN_KUBECONFIG = RUN / "admin.kubeconfig"
# The order they start in; they stop in the reverse order.
SERVICES = ("etcd", "kube-apiserver", "api-in", "api-out", "kube-controller-manager", "kube-scheduler", "coredns", "containerd", "kubelet")
# Go tools built with `go install`, one pinned version each (the module proxy's checksums).
TOOLS = {
    "coredns": ("github.com/coredns/coredns", "v1.15.0"),
    "registry": ("github.com/distribution/distribution/v3/cmd/registry", "v3.1.2"),
    "act": ("github.com/nektos/act", "v0.2.89"),
}


class ClusterError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def sh(*cmd: object, stdin: int | None = None, quiet: bool = False, timeout: float = 600) -> str:
    result = subprocess.run([str(c) for c in cmd], stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 and not quiet:
        raise ClusterError(f"{' '.join(map(str, cmd))} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def in_netns(*cmd: object) -> list[str]:
    """The command run in the cluster's network namespace (and this mount namespace, so
    containerd, the kubelet and the shims all see each other's mounts)."""
    return ["nsenter", f"--net={NETNS_PATH}", "--", *map(str, cmd)]


# ---------------------------------------------------------------- build


def built() -> bool:
    return all((BIN / name).is_file() for name in BINARIES)


def go_env(**extra: str) -> dict[str, str]:
    """Go's environment for our builds: its caches under CACHE, modules from the proxy."""
    return {
        **os.environ,
        "GOPATH": str(CACHE / "gopath"),
        "GOMODCACHE": str(CACHE / "gomod"),
        "GOCACHE": str(CACHE / "gocache"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
        **extra,
    }


def build() -> None:
    """The five Kubernetes binaries into BIN and the Go tools (CoreDNS, the registry, act), each
    skipped when there. Then the Go caches go (about 8 GB, needed again only for a new version):
    the test session needs that disk for the images in podman, the registry and containerd."""
    for name in TOOLS:
        tool(name)
    if not built():
        build_kubernetes()
    log(f"Kubernetes {VERSION} binaries are in {BIN}")
    if (CACHE / "gocache").exists() or (CACHE / "gomod").exists():
        subprocess.run(["go", "clean", "-cache", "-modcache"], env=go_env(), check=True)
        shutil.rmtree(CACHE / "gocache", ignore_errors=True)


def build_kubernetes() -> None:
    work = CACHE / "kube-module"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("go.mod", "go.sum"):  # built in a copy: `-mod=mod` may touch go.mod
        shutil.copy(HERE / "kube" / name, work / name)
    minor = VERSION.split(".")[1]
    ldflags = ["-s", "-w"] + [
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in (("gitVersion", VERSION), ("gitMajor", "1"), ("gitMinor", minor))
    ]
    env = go_env()
    packages = [f"k8s.io/kubernetes/cmd/{name}" for name in BINARIES]
    log(f"building Kubernetes {VERSION} ({', '.join(BINARIES)}) into {BIN}; from cold this takes about 20 minutes on 2 cores")
    started = time.monotonic()
    out = BIN.with_name(BIN.name + ".partial")
    subprocess.run(["go", "build", "-trimpath", "-ldflags", " ".join(ldflags), "-o", f"{out}/", *packages], cwd=work, env=env, check=True)
    out.rename(BIN)  # the binaries appear together or not at all
    log(f"built in {time.monotonic() - started:.0f} s")


def tool(name: str) -> Path:
    """A Go tool's binary (TOOLS), built once into CACHE/tools/<name>-<version>/."""
    module, version = TOOLS[name]
    folder = CACHE / "tools" / f"{name}-{version}"
    binary = folder / name
    if binary.is_file():
        return binary
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    env = go_env(GOBIN=str(partial))
    log(f"building {name} {version} from the Go module proxy")
    started = time.monotonic()
    subprocess.run(["go", "install", "-trimpath", f"{module}@{version}"], env=env, check=True)
    partial.rename(folder)
    log(f"built {name} in {time.monotonic() - started:.0f} s")
    return binary


def pause_archive() -> Path:
    """The pod sandbox image: our static pause binary as a one-layer OCI image archive, written
    here (no registry to pull registry.k8s.io/pause from, and no image tool needed)."""
    archive = CACHE / "pause" / f"pause-{hashlib.sha256((HERE / 'pause.c').read_bytes()).hexdigest()[:12]}.tar"
    if archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    binary = archive.parent / "pause"
    sh("gcc", "-static", "-Os", "-o", binary, HERE / "pause.c")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add(binary, arcname="pause")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer.getvalue()).hexdigest()}"]},
    }
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(layer.getvalue(), "application/vnd.oci.image.layer.v1.tar")],
    }
    entry = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    entry["annotations"] = {"org.opencontainers.image.ref.name": PAUSE_IMAGE, "io.containerd.image.name": PAUSE_IMAGE}
    index = {"schemaVersion": 2, "manifests": [entry]}
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", json.dumps(index).encode())] + [
            (f"blobs/sha256/{digest}", data) for digest, data in blobs.items()
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    partial.rename(archive)
    return archive


# ---------------------------------------------------------------- certificates and configs


@dataclass(frozen=True)
class Identity:
    name: str
    subject: str
    usage: str  # serverAuth or clientAuth
    alt_names: str = ""


IDENTITIES = (
    Identity(
        "apiserver",
        "/CN=kube-apiserver",
        "serverAuth",
        f"IP:127.0.0.1,IP:{SERVICE_IP},IP:{NODE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
    ),
    Identity("kubelet-serving", f"/CN={NODE_NAME}", "serverAuth", f"IP:{NODE_IP},DNS:{NODE_NAME}"),
    Identity("admin", "/O=system:masters/CN=ludus-admin", "clientAuth"),
    Identity("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", "clientAuth"),
    Identity("kube-controller-manager", "/CN=system:kube-controller-manager", "clientAuth"),
    Identity("kube-scheduler", "/CN=system:kube-scheduler", "clientAuth"),
    Identity("kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}", "clientAuth"),
)


def certificates(pki: Path) -> None:
    """A CA, a certificate for every component, and the service-account signing key (openssl)."""
    pki.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", pki / "ca.key", "-out", pki / "ca.crt", "-days", "30", "-subj", "/CN=ludus-test-ca")
    for who in IDENTITIES:
        key, csr, crt, ext = (pki / f"{who.name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
        sh("openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", who.subject)
        lines = [f"extendedKeyUsage={who.usage}", "keyUsage=critical,digitalSignature,keyEncipherment"]
        ext.write_text("\n".join(lines + ([f"subjectAltName={who.alt_names}"] if who.alt_names else [])) + "\n")
        sh("openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key", "-CAcreateserial", "-days", "30",
           "-extfile", ext, "-out", crt)  # fmt: skip
    sh("openssl", "genrsa", "-out", pki / "sa.key", "2048")
    sh("openssl", "rsa", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub")


def kubeconfig(path: Path, user: str, server: str) -> Path:
    pki = RUN / "pki"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ludus-test", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate": str(pki / f"{user}.crt"), "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "ludus-test", "context": {"cluster": "ludus-test", "user": user}}],
        "current-context": "ludus-test",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def containerd_config() -> Path:
    state = RUN / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""version = 2
root = "{state}/root"
state = "{state}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{CONTAINERD_SOCKET}"
[ttrpc]
  address = "{CONTAINERD_SOCKET}.ttrpc"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: without this runc fails on every pod
  restrict_oom_score_adj = true
  # pod network namespaces under our state folder, so `down` finds and unmounts them
  netns_mounts_under_state_dir = true
  disable_apparmor = true
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "{shutil.which("runc") or "/usr/sbin/runc"}"
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{RUN}/cni"
[{cri}.registry]
  # per registry: certs.d/<host:port>/hosts.toml (trust_registry)
  config_path = "{REGISTRY_HOSTS}"
"""
    path = RUN / "containerd.toml"
    path.write_text(text)
    cni = RUN / "cni"
    cni.mkdir()
    network = {
        "cniVersion": "1.0.0",
        "name": "ludus",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "ludus0",
                "isGateway": True,
                "ipMasq": False,  # nothing to masquerade to: the namespace has no way out
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],  # via the gateway: the node's and the Service's addresses
                    "dataDir": str(RUN / "cni-ipam"),
                },
            }
        ],
    }
    (cni / "10-ludus.conflist").write_text(json.dumps(network, indent=2))
    return path


def corefile() -> Path:
    """CoreDNS serving the cluster's names (Services, and pods under a headless Service) from the
    API server, as the admin (this is the test's infrastructure, not a workload)."""
    kc = kubeconfig(RUN / "coredns.kubeconfig", "admin", "https://127.0.0.1:443")
    text = f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 {{
    bind {DNS_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {kc} ludus-test
        pods insecure
    }}
    cache 5
}}
"""
    path = RUN / "Corefile"
    path.write_text(text)
    return path


def kubelet_config() -> Path:
    pki = RUN / "pki"
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True}, "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "address": NODE_IP,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,  # this machine has cgroup v1
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "podLogsDir": str(RUN / "pod-logs"),
        "resolvConf": "",  # no upstream: pods resolve the cluster's names only (CoreDNS)
        "clusterDNS": [DNS_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "staticPodPath": "",
        "maxPods": 40,
        # the tests' images are large and pulled once: never collect them, never evict for disk
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "registerNode": True,
    }
    path = RUN / "kubelet.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


# ---------------------------------------------------------------- processes


def commands() -> dict[str, list[str]]:
    pki = RUN / "pki"
    kc = {
        name: str(kubeconfig(RUN / f"{name}.kubeconfig", name, "https://127.0.0.1:443"))
        for name in ("kube-controller-manager", "kube-scheduler", "kubelet")
    }
    kubeconfig(ADMIN_KUBECONFIG, "admin", f"https://127.0.0.1:{API_PORT}")
    return {
        "etcd": in_netns(
            "etcd", "--name=ludus", f"--data-dir={RUN / 'etcd'}", "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379", "--listen-peer-urls=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls=http://127.0.0.1:2380", "--initial-cluster=ludus=http://127.0.0.1:2380",
        ),
        "kube-apiserver": in_netns(
            BIN / "kube-apiserver", "--etcd-servers=http://127.0.0.1:2379", "--bind-address=0.0.0.0", "--secure-port=443",
            f"--advertise-address={NODE_IP}", f"--service-cluster-ip-range={SERVICE_RANGE}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}", f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP", "--profiling=false",
        ),
        # this machine's 127.0.0.1:API_PORT -> a Unix socket -> the API server in the namespace
        "api-in": in_netns("socat", f"UNIX-LISTEN:{RUN / 'api.sock'},fork", "TCP:127.0.0.1:443"),
        "api-out": ["socat", f"TCP-LISTEN:{API_PORT},bind=127.0.0.1,reuseaddr,fork", f"UNIX-CONNECT:{RUN / 'api.sock'}"],
        "kube-controller-manager": in_netns(
            BIN / "kube-controller-manager", f"--kubeconfig={kc['kube-controller-manager']}",
            f"--authentication-kubeconfig={kc['kube-controller-manager']}", f"--authorization-kubeconfig={kc['kube-controller-manager']}",
            "--bind-address=127.0.0.1", "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_RANGE}", "--profiling=false",
        ),
        "kube-scheduler": in_netns(
            BIN / "kube-scheduler", f"--kubeconfig={kc['kube-scheduler']}", f"--authentication-kubeconfig={kc['kube-scheduler']}",
            f"--authorization-kubeconfig={kc['kube-scheduler']}", "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false",
        ),
        "coredns": in_netns(tool("coredns"), "-conf", corefile()),
        "containerd": in_netns("containerd", f"--config={containerd_config()}"),
        "kubelet": in_netns(
            BIN / "kubelet", f"--config={kubelet_config()}", f"--kubeconfig={kc['kubelet']}", f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}", f"--root-dir={RUN / 'kubelet'}",
        ),
    }  # fmt: skip


def pid_file(name: str) -> Path:
    return RUN / "pids" / f"{name}.pid"


def start(name: str, cmd: Sequence[str]) -> subprocess.Popen[bytes]:
    logs = RUN / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file(name).parent.mkdir(exist_ok=True)
    pid_file(name).write_text(str(proc.pid))
    return proc


def log_tail(name: str, lines: int = 30) -> str:
    path = RUN / "logs" / f"{name}.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def api_get(path: str, timeout: float = 5) -> bytes:
    """A request to the API server as the admin, through this machine's loopback."""
    pki = RUN / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with urllib.request.urlopen(f"https://127.0.0.1:{API_PORT}{path}", context=context, timeout=timeout) as response:
        return response.read()


def wait_for(what: str, check, procs: dict[str, subprocess.Popen[bytes]], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ClusterError(
                    f"{name} exited ({proc.returncode}) while waiting for {what}; its log ({RUN / 'logs' / name}.log):\n{log_tail(name)}"
                )
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} not ready after {timeout:.0f} s; logs in {RUN / 'logs'}")
        time.sleep(0.5)


def node_ready() -> bool:
    node = json.loads(api_get(f"/api/v1/nodes/{NODE_NAME}"))
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def default_service_account() -> bool:
    return bool(api_get("/api/v1/namespaces/default/serviceaccounts/default"))


def netns() -> None:
    """The cluster's network namespace with its two addresses on loopback."""
    if not NETNS_PATH.exists():
        sh("ip", "netns", "add", NETNS)
    for cmd in (("ip", "link", "set", "lo", "up"), ("ip", "addr", "replace", f"{NODE_IP}/32", "dev", "lo"),
                ("ip", "addr", "replace", f"{SERVICE_IP}/32", "dev", "lo"), ("ip", "addr", "replace", f"{DNS_IP}/32", "dev", "lo")):  # fmt: skip
        sh(*in_netns(*cmd))


def up() -> dict[str, float]:
    """Starts the cluster with the pause image preloaded (as a node image holds it); every other
    image is pulled from a registry by the kubelet. Returns seconds."""
    if not built():
        raise ClusterError(f"no Kubernetes binaries in {BIN}: run `python -m tests.cluster.cluster build` first")
    for tool in ("etcd", "containerd", "ctr", "runc", "socat", "nsenter", "openssl"):
        if not shutil.which(tool):
            raise ClusterError(f"{tool} is not installed (.ci/run installs etcd-server, containerd, runc, containernetworking-plugins, socat)")
    down(quiet=True)
    started = time.monotonic()
    RUN.mkdir(parents=True)
    certificates(RUN / "pki")
    netns()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, cmd in commands().items():
        procs[name] = start(name, cmd)
        if name == "api-out":
            wait_for("the API server", lambda: api_get("/readyz") == b"ok", procs)
        if name == "containerd":
            wait_for("containerd", lambda: subprocess.run(ctr("version"), capture_output=True, check=False).returncode == 0, procs)
    wait_for(f"node {NODE_NAME}", node_ready, procs)
    wait_for("the default service account", default_service_account, procs)
    ready = time.monotonic() - started
    import_archive(pause_archive())
    log(f"up in {ready:.1f} s; KUBECONFIG={ADMIN_KUBECONFIG}")
    return {"cluster_up_seconds": round(ready, 1)}


def trust_registry(host: str, ca: Path) -> None:
    """containerd pulls from https://host with the CA given (its certs.d, read on every pull)."""
    folder = REGISTRY_HOSTS / host
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca, folder / "ca.crt")
    hosts = f'server = "https://{host}"\n\n[host."https://{host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "{folder / "ca.crt"}"\n'
    (folder / "hosts.toml").write_text(hosts)


def is_up() -> bool:
    try:
        return api_get("/readyz") == b"ok"
    except (OSError, ssl.SSLError):
        return False


def reset_namespace(name: str, timeout: float = 180) -> None:
    """Deletes a namespace of a reused cluster and waits until it is gone."""
    kubectl = [str(BIN / "kubectl"), f"--kubeconfig={ADMIN_KUBECONFIG}"]
    sh(*kubectl, "delete", "namespace", name, "--ignore-not-found", "--wait=true", f"--timeout={timeout:.0f}s", timeout=timeout + 30)


def ctr(*args: object) -> list[str]:
    return ["ctr", f"--address={CONTAINERD_SOCKET}", "--namespace=k8s.io", *map(str, args)]


def import_archive(archive: Path) -> None:
    sh(*ctr("images", "import", archive))


# ---------------------------------------------------------------- stopping


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def stop_pids(pids: Sequence[int], grace: float = 10) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pod_pids() -> list[int]:
    """Every process in a pod (the kubelet puts each pod under kubepods in each hierarchy), and the
    containerd shims that serve this cluster's containerd (identified by its socket)."""
    pids: set[int] = set()
    root = Path("/sys/fs/cgroup/pids/kubepods")
    if root.is_dir():
        for procs in root.rglob("cgroup.procs"):
            pids.update(int(p) for p in procs.read_text().split())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and "containerd-shim" in (line := cmdline(int(entry.name))) and str(CONTAINERD_SOCKET) in line:
            pids.add(int(entry.name))
    return sorted(pids)


def our_mounts() -> list[str]:
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [m for m in mounts if m == str(RUN) or m.startswith(f"{RUN}/")]


def remove_cgroups() -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        root = hierarchy / "kubepods"
        if root.is_dir():
            for folder in [*sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), root]:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def down(quiet: bool = False) -> None:
    """Stops every process by its PID (the kubelet, the pods and their shims, containerd, the
    control plane, etcd, the forwarders), unmounts everything under RUN, removes the network
    namespace and RUN. Safe to run when nothing is running."""
    for name in reversed(SERVICES):
        if name == "containerd":  # after the kubelet, before containerd: the pods and their shims
            stop_pids(pod_pids(), grace=2)
        path = pid_file(name)
        if not path.exists():
            continue
        pid = int(path.read_text())
        if running(pid):
            stop_pids([pid])
        path.unlink()
    for extra in ("expose",):
        for path in sorted((RUN / "pids").glob(f"{extra}-*.pid")) if (RUN / "pids").is_dir() else []:
            stop_pids([int(path.read_text())])
            path.unlink()
    stop_pids(pod_pids(), grace=2)
    for mount in sorted(our_mounts(), key=lambda m: -len(m)):
        sh("umount", "--lazy", mount, quiet=True)
    if our_mounts():
        raise ClusterError(f"still mounted after down: {our_mounts()}")
    remove_cgroups()
    if NETNS_PATH.exists():
        sh("ip", "netns", "delete", NETNS)
    if RUN.exists():
        shutil.rmtree(RUN)
    if not quiet:
        log("stopped")


def expose(name: str, host_port: int, cluster_port: int, bind: str = NODE_IP) -> None:
    """Makes this machine's 127.0.0.1:host_port reachable in the cluster's namespace at
    bind:cluster_port (pods reach NODE_IP; containerd also 127.0.0.1), replacing an earlier
    exposure of that name."""
    sock = RUN / f"expose-{name}.sock"
    for side in ("in", "out"):
        if pid_file(f"expose-{name}-{side}").exists():
            stop_pids([int(pid_file(f"expose-{name}-{side}").read_text())])
    sock.unlink(missing_ok=True)
    start(f"expose-{name}-out", ["socat", f"UNIX-LISTEN:{sock},fork", f"TCP:127.0.0.1:{host_port}"])
    start(f"expose-{name}-in", in_netns("socat", f"TCP-LISTEN:{cluster_port},bind={bind},reuseaddr,fork", f"UNIX-CONNECT:{sock}"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster.cluster", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["build", "up", "down", "env"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        elif args.command == "up":
            build()
            print(json.dumps(up()))
        elif args.command == "down":
            down()
        else:
            print(f"export KUBECONFIG={ADMIN_KUBECONFIG} PATH={BIN}:$PATH")
    except ClusterError as e:
        print(f"cluster: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
