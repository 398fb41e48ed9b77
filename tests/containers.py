"""Building our two images for the tests: `make images DOCKER=podman` from the real Dockerfiles,
on local base images made with debootstrap (no registry can be reached here). Used by the image
tests (tests/images) and the cluster tests (tests/cluster), whose sessions import the fixtures
`podman`, `bases` and `images`. Needs root, podman, buildah and debootstrap (.ci/run installs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PREFIX, TAG = "localhost/ludus-test", "test"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASES = {
    "python": "localhost/ludus-base/python:bookworm",
    "rust": "localhost/ludus-base/rust:bookworm",
    "distroless": "localhost/ludus-base/distroless-python:bookworm",
}
# What gcr.io/distroless/python3-debian12 is made of (its python3/BUILD on top of base and cc):
# the same Debian 12 packages, no shell, no package manager. The stand-in lacks netbase and
# libgomp1 (under 1 MB together), which the Python base does not have.
DISTROLESS_PACKAGES = [
    *("base-files", "tzdata", "ca-certificates", "libc6", "libssl3", "openssl", "libgcc-s1", "libstdc++6"),
    *("libbz2-1.0", "libdb5.3", "libexpat1", "liblzma5", "libsqlite3-0", "libuuid1", "libncursesw6", "libtinfo6", "zlib1g"),
    *("libcom-err2", "libcrypt1", "libgssapi-krb5-2", "libk5crypto3", "libkeyutils1", "libkrb5-3", "libkrb5support0"),
    *("libnsl2", "libreadline8", "libtirpc3", "libffi8", "python3-distutils"),
    *("libpython3.11-minimal", "libpython3.11-stdlib", "python3.11-minimal"),
]
DISTROLESS_USERS = {
    "passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    "group": "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
}
GEN, TRAIN = f"{PREFIX}-gen:{TAG}", f"{PREFIX}-train:{TAG}"
PODMAN_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def sh(*cmd: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    for tool in ("podman", "debootstrap", "docker"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed: .ci/run installs podman, buildah, runc and debootstrap")
    folder = tmp_path_factory.mktemp("podman")
    (folder / "containers.conf").write_text(PODMAN_CONF)
    graph = Path("/var/tmp/ludus-podman")
    (folder / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{graph}/graph"\nrunroot = "{graph}/run"\n')
    env = {"CONTAINERS_CONF": str(folder / "containers.conf"), "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf")}
    os.environ.update(env)
    yield env


def debian_mirror() -> str:
    """The machine's Debian mirror: the deb822 stanza that serves bookworm's main component."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
            suites, uris = fields.get("Suites", "").split(), fields.get("URIs", "").split()
            if "bookworm" in suites and "main" in fields.get("Components", "").split() and uris and uris[0].rstrip("/").endswith("/debian"):
                return uris[0]
    return "http://deb.debian.org/debian"


def rootfs(folder: Path, packages: list[str]) -> Path:
    """A minimal Debian bookworm with the machine's CA certificates (HTTPS here is re-signed)."""
    sh("debootstrap", "--variant=minbase", f"--include={','.join(packages)}", "bookworm", folder, debian_mirror())
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(cert, folder / "usr/local/share/ca-certificates" / cert.name)
    sh("chroot", folder, "update-ca-certificates")
    shutil.rmtree(folder / "var/cache/apt/archives", ignore_errors=True)
    return folder


def import_image(folder: Path, name: str, *changes: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(folder), "-c", "."], stdout=subprocess.PIPE)
    args = [a for change in changes for a in ("--change", change)]
    sh("podman", "import", *args, "-", name, stdin=tar.stdout)
    tar.wait()


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], check=False).returncode == 0


def distroless_python(python_image: str, folder: Path) -> None:
    """A stand-in for distroless Python: only the files the packages above install, taken out of
    the Python stand-in, plus what distroless adds (CA bundle, users, python3 links)."""
    exported, rootfs = folder / "exported", folder / "rootfs"
    exported.mkdir()
    container = sh("podman", "create", python_image, "true").stdout.strip()
    export = subprocess.Popen(["podman", "export", container], stdout=subprocess.PIPE)
    sh("tar", "-C", exported, "-x", stdin=export.stdout)
    export.wait()
    sh("podman", "rm", container)
    listed = sh("chroot", exported, "dpkg", "-L", *DISTROLESS_PACKAGES).stdout.split()
    names = sorted({p.lstrip("/") for p in listed if p.startswith("/") and p.lstrip("/") not in ("", ".", "bin", "lib", "lib64", "sbin")})
    for part in ("bin", "lib", "lib64", "sbin"):  # merged /usr, as in Debian 12 and distroless
        (rootfs / "usr" / part).mkdir(parents=True)
        (rootfs / part).symlink_to(f"usr/{part}")
    (folder / "names").write_text("\n".join(names) + "\n")
    pack = subprocess.Popen(["tar", "-C", str(exported), "-c", "--no-recursion", "-T", str(folder / "names")], stdout=subprocess.PIPE)
    sh("tar", "-C", rootfs, "-x", "--keep-directory-symlink", stdin=pack.stdout)
    pack.wait()
    shutil.copy(exported / "etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    for link in ("python", "python3"):
        (rootfs / "usr/bin" / link).symlink_to("python3.11")
    for name, text in DISTROLESS_USERS.items():
        (rootfs / "etc" / name).write_text(text)
    (rootfs / "home/nonroot").mkdir(parents=True)
    os.chown(rootfs / "home/nonroot", 65532, 65532)
    import_image(
        rootfs,
        BASES["distroless"],
        f"ENV PATH={SYSTEM_PATH}",
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "ENV LANG=C.UTF-8",
        "USER 65532",
        "WORKDIR /home/nonroot",
        'ENTRYPOINT ["/usr/bin/python3.11"]',
    )


@pytest.fixture(scope="session")
def bases(podman: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Local stand-ins for python:slim, rust:slim and distroless Python (the trainer builds on the
    Python one); made once per machine, they are deterministic."""
    work = tmp_path_factory.mktemp("bases")
    if not image_exists(BASES["python"]):
        python = rootfs(work / "python", ["python3", "python3-venv", "python3-pip", "ca-certificates"])
        import_image(python, BASES["python"], f"ENV PATH={SYSTEM_PATH}")
    if not image_exists(BASES["rust"]):
        rust = rootfs(work / "rust", ["gcc", "libc6-dev", "ca-certificates", "binutils"])
        sysroot = Path(sh("rustc", "--print", "sysroot").stdout.strip())
        for part in ("bin", "lib"):
            shutil.copytree(sysroot / part, rust / "usr/local/rust" / part, symlinks=True)
        import_image(rust, BASES["rust"], f"ENV PATH=/usr/local/rust/bin:{SYSTEM_PATH}")
    if not image_exists(BASES["distroless"]):
        distroless_python(BASES["python"], work)
    # No PyTorch image can be pulled: on the Python base the train Dockerfile's pip installs torch.
    return {"RUST_IMAGE": BASES["rust"], "PYTHON_IMAGE": BASES["python"], "RUNTIME_IMAGE": BASES["distroless"], "BASE_IMAGE": BASES["python"]}


def build_flags(bases: dict[str, str]) -> str:
    """BUILD_FLAGS for `make images`: the local bases, and the host network for pip."""
    return " ".join(f"--build-arg {k}={v}" for k, v in bases.items()) + " --network host"


@pytest.fixture(scope="session")
def images(bases: dict[str, str]) -> Iterator[dict[str, float]]:
    """`make images DOCKER=podman` with the local bases; yields build seconds. Afterwards the
    built images, their dangling layers and build containers are removed (the trainer image is
    6 GB; repeated runs would fill the disk), and only the stand-in bases stay."""
    flags = build_flags(bases)
    started = time.perf_counter()
    try:
        sh("make", "images", "DOCKER=podman", f"IMAGE_PREFIX={PREFIX}", f"IMAGE_TAG={TAG}", f"BUILD_FLAGS={flags}", cwd=ROOT, timeout=3600)
        yield {"both_images_seconds": round(time.perf_counter() - started, 1)}
    finally:
        subprocess.run(["podman", "rmi", "--force", GEN, TRAIN], capture_output=True, check=False)
        subprocess.run(["podman", "image", "prune", "--force"], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", "--all"], capture_output=True, check=False)
