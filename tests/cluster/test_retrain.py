"""The retrain workflow (.github/workflows/retrain.yml) run as written, against real services.

`act` (nektos/act, built from the Go module proxy) evaluates the workflow's expressions, `env`,
`secrets`, `vars` and `inputs` as GitHub does and runs its steps on this machine
(`-P ubuntu-24.04=-self-hosted`): the runner is this machine, as on a self-hosted runner. Each
`uses:` action, pinned by commit in the workflow, points at a small local stand-in
(tests/cluster/actions/): act has copied the working tree into the job's workspace (checkout's
work), setup-python checks the machine's python3, the login runs `podman login`, and
upload-artifact copies into a folder. `docker` is podman on this runner (a link on PATH, as the
podman-docker package makes it).

The secrets come from the real services of the session: the test cluster's kubeconfig, the S3
server's URL and keys, and the registry's password. The runner's own environment carries what a
self-hosted runner's would: the S3 endpoint, the stand-in base images for the build, and the
node-sized settings of a 2-core cluster without a GPU.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.storage import RunLayout, Store
from jobs.manifests import K8S
from tests.cluster import cluster, registry
from tests.cluster.conftest import PULL_SECRET, Cluster
from tests.cluster.test_cluster import NAMESPACE, NODE_SIZES, ensure_secret
from tests.conftest import ROOT, S3_KEY, S3_SECRET, jobs_env, make_bucket
from tests.containers import build_flags

WORKFLOW = ROOT / ".github" / "workflows" / "retrain.yml"
STAND_INS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "docker/login-action": "login",
    "actions/upload-artifact": "upload-artifact",
}
ACTIONS = Path(__file__).resolve().parent / "actions"
BUCKET = "retrain"
RUN_NUMBERS = itertools.count(int(time.time()) % 100_000 * 10)
# The size of a run on the test cluster: as small as the other cluster tests' runs.
TASK_SETTINGS = {
    "ur": {"PRESET": "test", "DEPTH": "1", "EVAL_GAMES": "20"},
    "predator": {
        **{"PRESET": "test", "STEPS": "80", "MAX_BOIDS": "8", "TEACHER": "pursuit"},
        **{"EVAL_GAMES": "6", "EVAL_STEPS": "300", "EVAL_MAX_BOIDS": "8"},
    },
}


@dataclass
class Retrain:
    returncode: int
    log: str  # act's output, one JSON record a line
    summary: str  # what the steps wrote to $GITHUB_STEP_SUMMARY
    run_id: str
    sha: str
    store: str
    artifacts: Path
    seconds: float

    def step_failed(self, name: str) -> bool:
        return any(r.get("stage") == "Main" and r.get("step") == name and r.get("stepResult") == "failure" for r in self.records())

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def output(self) -> str:
        return "\n".join(str(r.get("msg", "")) for r in self.records())


def pinned_actions() -> dict[str, str]:
    """`owner/name@sha` of every action the workflow uses -> its stand-in folder."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["retrain"]["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert {u.split("@")[0] for u in uses} == set(STAND_INS), f"the workflow uses {uses}: give each a stand-in in {ACTIONS}"
    return {u: str(ACTIONS / STAND_INS[u.split("@")[0]]) for u in uses}


def dotenv(path: Path, values: dict[str, str]) -> Path:
    """act's --secret-file and --var-file: NAME='value' lines (single-quoted: taken as is)."""
    for value in values.values():
        assert "'" not in value and "\n" not in value
    path.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def runner_env(tmp: Path, task: str, auth_file: Path, artifacts: Path) -> dict[str, str]:
    """The self-hosted runner's environment: no secret in it (those come as `secrets`)."""
    links = tmp / "bin"
    links.mkdir()
    (links / "docker").symlink_to(subprocess.run(["which", "podman"], capture_output=True, text=True, check=True).stdout.strip())
    env = jobs_env(**NODE_SIZES, **TASK_SETTINGS[task])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KUBECONFIG", "VIRTUAL_ENV"):
        env.pop(name, None)
    env |= {
        "PATH": f"{links}:{env['PATH']}",
        "REGISTRY_AUTH_FILE": str(auth_file),
        "ARTIFACT_DIR": str(artifacts),
        "XDG_CACHE_HOME": str(tmp / "cache"),  # act's copies of the workspace, removed with tmp
        "BUILD_FLAGS": build_flags(BASES),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("IMAGE_PULL_SECRET", None)  # a repository variable here, as the README says
    return env


def run_workflow(k8s: Cluster, s3_server: str, tmp: Path, task: str, *, repo: Path = ROOT, password: str | None = None) -> Retrain:
    """`act push` for ur (the push trigger), `act workflow_dispatch` with inputs otherwise."""
    number = next(RUN_NUMBERS)
    store = f"s3://{BUCKET}/{tmp.name}"
    artifacts, auth_file = tmp / "artifacts", tmp / "auth.json"
    env = runner_env(tmp, task, auth_file, artifacts)
    env["AWS_ENDPOINT_URL"] = s3_server
    kubeconfig = json.dumps(json.loads(cluster.ADMIN_KUBECONFIG.read_text()))
    secrets = dotenv(tmp / "secrets", {
        "KUBECONFIG": kubeconfig, "STORAGE_URL": store, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "REGISTRY_PASSWORD": password if password is not None else k8s.oci.password,
    })  # fmt: skip
    variables = dotenv(tmp / "vars", {
        "REGISTRY": registry.HOST, "IMAGE_PREFIX": f"{registry.HOST}/ludus", "REGISTRY_USERNAME": registry.USER,
        "IMAGE_PULL_SECRET": PULL_SECRET, "RETRAIN_GAMES": "40", "RETRAIN_EPOCHS": "2",
    })  # fmt: skip
    event = ["push"] if task == "ur" else ["workflow_dispatch", "--input", f"task={task}", "--input", "games=6", "--input", "epochs=2"]
    mapped = [a for use, folder in pinned_actions().items() for a in ("--local-repository", f"{use}={folder}")]
    cmd = [
        str(cluster.tool("act")), *event, "-W", str(WORKFLOW.relative_to(ROOT)), "-C", str(repo), "-P", "ubuntu-24.04=-self-hosted",
        *mapped, "--action-offline-mode", "--json", "--secret-file", str(secrets), "--var-file", str(variables),
        "--env", f"GITHUB_RUN_ID={number}",
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=2400, check=False)
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    summary = "".join(r["content"] for r in map(json.loads, filter(is_json, log.splitlines())) if r.get("command") == "summary")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    return Retrain(result.returncode, log, summary, f"gh-{number}-1", sha, store, artifacts, seconds)


def is_json(line: str) -> bool:
    return line.startswith("{")


BASES: dict[str, str] = {}


@pytest.fixture
def retrain_env(k8s: Cluster, s3_env: dict[str, str], bases: dict[str, str]) -> Cluster:
    """The cluster as the README sets it up for CI: namespace, RBAC, the store's and the
    registry's Secrets; the bucket of the workflow's STORAGE_URL."""
    BASES.update(bases)
    k8s.kubectl("apply", "-f", K8S / "00-namespace.yaml", "-f", K8S / "10-rbac.yaml")
    ensure_secret(k8s)
    make_bucket(BUCKET)
    return k8s


def jobs_of_run(k8s: Cluster, run_id: str) -> list[Any]:
    return k8s.batch.list_namespaced_job(NAMESPACE, label_selector=f"ludus.dev/run-id={run_id}").items


def test_a_wrong_registry_password_fails_at_login_before_any_push_or_job(retrain_env: Cluster, s3_server: str, tmp_path: Path) -> None:
    k8s = retrain_env
    run = run_workflow(k8s, s3_server, tmp_path, "ur", password="not-the-password")
    assert run.returncode != 0, run.output()[-3000:]
    said = run.output()
    assert "invalid username/password" in said or "unauthorized" in said.lower(), said[-3000:]
    steps = {r.get("step") for r in run.records() if r.get("stage") == "Main"}
    assert not any(str(s).startswith(("Build and push", "Run the pipeline")) for s in steps), steps
    assert run.sha not in registry_tags(k8s, "ludus-train") and run.sha not in registry_tags(k8s, "ludus-gen")
    assert jobs_of_run(k8s, run.run_id) == []


def registry_tags(k8s: Cluster, repository: str) -> list[str]:
    return k8s.oci.tags(repository)


def check_pulled_from_registry(k8s: Cluster, run: Retrain) -> None:
    """Both images are in the registry under the commit's tag, and every pod of the run ran the
    image the registry serves under that tag (the kubelet's imageID is its digest)."""
    digests = {name: k8s.oci.digest(f"ludus-{name}", run.sha) for name in ("gen", "train")}
    jobs = jobs_of_run(k8s, run.run_id)
    assert sorted(j.metadata.labels["app.kubernetes.io/component"] for j in jobs) == ["evaluate", "generate", "train"]
    pods = k8s.core.list_namespaced_pod(NAMESPACE, label_selector=f"ludus.dev/run-id={run.run_id}").items
    assert pods
    for pod in pods:
        name = "gen" if pod.metadata.labels["app.kubernetes.io/component"] == "generate" else "train"
        assert pod.spec.containers[0].image == f"{registry.HOST}/ludus-{name}:{run.sha}", pod.spec.containers[0].image
        # The kubelet names the image it ran by a repository that holds it (the same content
        # may be there under another name too): its digest is what the registry serves for the tag.
        image_id = pod.status.container_statuses[0].image_id
        assert image_id.startswith(f"{registry.HOST}/") and image_id.endswith(f"@{digests[name]}"), (image_id, digests[name])
        assert [s.name for s in pod.spec.image_pull_secrets] == [PULL_SECRET]


def check_report(run: Retrain, task: str) -> None:
    """The promotion happened, or not, as the report says; the step summary and the artifact
    both hold the report."""
    store, layout = Store(run.store), RunLayout(task, run.run_id)
    report = store.read_json(f"{layout.eval}/report.json")
    champion = store.read_json(layout.champion) if store.exists(layout.champion) else None
    assert report["promoted"] == (champion is not None and champion["run_id"] == run.run_id), (report, champion)
    text = store.read_bytes(f"{layout.eval}/report.md").decode()
    assert text.strip() and text.strip() in run.summary, run.summary[:2000]
    assert (run.artifacts / f"report-{run.run_id}" / "eval_report.md").read_text() == text


def retrained(k8s: Cluster, s3_server: str, tmp: Path, task: str) -> Retrain:
    """The workflow's run for `task`, checked: it passed, every pod ran the pushed images, and the
    report is where it should be."""
    run = run_workflow(k8s, s3_server, tmp, task)
    assert run.returncode == 0, run.output()[-5000:]
    check_pulled_from_registry(k8s, run)
    check_report(run, task)
    return run


def test_a_push_retrains_ur_from_pushed_images_on_the_cluster(retrain_env: Cluster, s3_server: str, tmp_path: Path) -> None:
    k8s = retrain_env
    run = retrained(k8s, s3_server, tmp_path, "ur")
    k8s.record(retrain_ur_workflow_seconds=round(run.seconds, 1))


def planted_repo(tmp: Path) -> Path:
    """A clone of this commit plus one commit whose trainer image refuses to run: its entry
    point exits 2, as `python -m jobs` does when it refuses its settings."""
    repo = tmp / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    dockerfile = repo / "images" / "train.Dockerfile"
    exits = "import sys; print('planted failure: this trainer image exits 2', file=sys.stderr); sys.exit(2)"
    dockerfile.write_text(dockerfile.read_text() + f"ENTRYPOINT {json.dumps(['python3', '-c', exits])}\n")
    who = ["-c", "user.name=ludus test", "-c", "user.email=test@ludus.invalid"]
    subprocess.run(["git", *who, "commit", "--quiet", "-am", "plant a trainer image that fails"], cwd=repo, check=True)
    return repo


def test_a_failing_trainer_fails_the_workflow_and_the_summary_names_the_stage(retrain_env: Cluster, s3_server: str, tmp_path: Path) -> None:
    k8s = retrain_env
    run = run_workflow(k8s, s3_server, tmp_path, "ur", repo=planted_repo(tmp_path))
    assert run.returncode != 0, run.output()[-3000:]
    assert run.step_failed("Run the pipeline on the cluster"), run.output()[-3000:]
    train_job = next(j.metadata.name for j in jobs_of_run(k8s, run.run_id) if j.metadata.labels["app.kubernetes.io/component"] == "train")
    assert f"## Run {run.run_id} failed in its train stage" in run.summary, run.summary
    assert f"kubectl -n {NAMESPACE} logs --selector job-name={train_job}" in run.summary, run.summary
    logs = k8s.kubectl("-n", NAMESPACE, "logs", "--selector", f"job-name={train_job}", "--tail", "50").stdout
    assert "planted failure" in logs, logs
    assert (run.artifacts / f"report-{run.run_id}" / "failure.json").is_file()


def test_a_dispatch_retrains_the_predator_with_its_inputs(retrain_env: Cluster, s3_server: str, tmp_path: Path) -> None:
    k8s = retrain_env
    run = retrained(k8s, s3_server, tmp_path, "predator")
    run_json = Store(run.store).read_json(RunLayout("predator", run.run_id).run_json)
    assert run_json["settings"]["games"] == 6, run_json  # the dispatch's input, not the variable's 40
    k8s.record(retrain_predator_workflow_seconds=round(run.seconds, 1))


def test_the_runner_environment_carries_no_secret(retrain_env: Cluster, tmp_path: Path) -> None:
    env = runner_env(tmp_path, "ur", tmp_path / "auth.json", tmp_path / "artifacts")
    for value in (S3_SECRET, retrain_env.oci.password):
        assert value not in json.dumps(env)
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != env.get("AWS_SECRET_ACCESS_KEY")
