"""Both images built from the real Dockerfiles through `make images DOCKER=podman`, on local base
images made with debootstrap (no registry can be reached here), then run for real: the generator
image writes a shard into a real S3 server (SeaweedFS) and the trainer image trains on it and
uploads the weights. Run with `make test-images` (root, podman, buildah and debootstrap needed;
.ci/run installs them)."""

from __future__ import annotations

import json
import subprocess
import time

from common.storage import RunLayout, Store, read_committed_shard
from tests.conftest import ROOT, S3_KEY, S3_SECRET, make_bucket
from tests.containers import BASES, GEN, TRAIN, sh

FIGURES = ROOT / "docs" / "results" / "ci" / "images.json"


def run(image: str, s3_env: dict[str, str], *args: str, **settings: object) -> subprocess.CompletedProcess[str]:
    env = [f"--env={k}={v}" for k, v in {**s3_env, **settings}.items()]
    # As the Jobs run them: a read-only root filesystem and a writable /tmp (jobs/k8s.py, security).
    return sh("podman", "run", "--rm", "--read-only", "--tmpfs", "/tmp:rw,mode=1777", "--network", "host", *env, image, *args, timeout=1800)


def size_mb(image: str) -> float:
    return round(int(sh("podman", "image", "inspect", "--format", "{{.Size}}", image).stdout.strip()) / 1e6, 1)


def test_images_run_as_non_root(images: dict[str, float]) -> None:
    for image in (GEN, TRAIN):
        assert sh("podman", "image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip() == "10001:10001"
        uid = sh("podman", "run", "--rm", "--entrypoint", "python3", image, "-c", "import os; print(os.getuid())").stdout.strip()
        assert uid == "10001", f"{image} runs as uid {uid}"


def test_generator_image_is_small_and_has_no_shell(images: dict[str, float]) -> None:
    # The goal is under 150 MB; the runtime stage may only copy files (no RUN, no shell).
    assert size_mb(GEN) < 150, f"{GEN} is {size_mb(GEN)} MB"
    shell = subprocess.run(["podman", "run", "--rm", "--entrypoint", "/bin/sh", GEN, "-c", "true"], capture_output=True, check=False)
    assert shell.returncode != 0, "the generator image has a shell"


def test_generator_image_writes_a_shard_and_trainer_image_trains_on_it(images: dict[str, float], s3_env: dict[str, str]) -> None:
    make_bucket("images")
    settings = {"STORAGE_URL": "s3://images/ludus", "RUN_ID": "image-run", "SHARDS": 1, "GAMES": 8, "DEPTH": 1}
    credentials = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_ENDPOINT_URL": s3_env["AWS_ENDPOINT_URL"]}
    credentials["AWS_DEFAULT_REGION"] = "us-east-1"
    started = time.perf_counter()
    run(GEN, credentials, **settings)
    gen_seconds = time.perf_counter() - started
    store, layout = Store("s3://images/ludus"), RunLayout("ur", "image-run")
    manifest, _ = read_committed_shard(store, layout, 0)
    assert manifest.games == 8 and manifest.generator.startswith("rust_gen")
    run(TRAIN, credentials, **settings, EPOCHS=2, BATCH_SIZE=256, DEVICE="auto")
    weights = store.read_json(layout.weights)
    assert weights["provenance"]["run_id"] == "image-run" and weights["provenance"]["git_revision"] != "unknown"
    assert len(store.read_json(layout.model_file("compat_weights.json"))["policy_weights"]) == 82_119
    # The same image evaluates (rust_gen inside) when given the job as its command.
    run(TRAIN, credentials, "evaluate", **settings, EVAL_GAMES=10, EVAL_OPPONENTS="random")
    assert store.exists(f"{layout.eval}/report.json")
    figures = {
        **images,
        "gen_image_mb": size_mb(GEN),
        "gen_base_mb": size_mb(BASES["distroless"]),
        "gen_layers_over_base_mb": round(size_mb(GEN) - size_mb(BASES["distroless"]), 1),
        "train_image_mb": size_mb(TRAIN),
        "gen_run_seconds": round(gen_seconds, 1),
        "bases": "stand-ins made here: the gen runtime from the Debian 12 packages distroless Python is built from; debootstrap "
        "bookworm minbase with python3 (+venv, pip) for the Python builder and the train image; gcc + the host's Rust for the Rust builder",
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


def test_the_images_run_the_predator_too(images: dict[str, float], s3_env: dict[str, str]) -> None:
    make_bucket("images-predator")
    settings = {"STORAGE_URL": "s3://images-predator/ludus", "RUN_ID": "predator-run", "TASK": "predator", "SHARDS": 1, "GAMES": 3}
    settings |= {"STEPS": 100, "MAX_BOIDS": 8, "TEACHER": "pursuit"}
    credentials = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_ENDPOINT_URL": s3_env["AWS_ENDPOINT_URL"]}
    credentials["AWS_DEFAULT_REGION"] = "us-east-1"
    run(GEN, credentials, **settings)  # the generator image has no torch, for this task too
    store, layout = Store("s3://images-predator/ludus"), RunLayout("predator", "predator-run")
    manifest, _ = read_committed_shard(store, layout, 0)
    assert manifest.games == 3
    run(TRAIN, credentials, **settings, EPOCHS=1, BATCH_SIZE=128, DEVICE="auto")
    assert store.read_bytes(layout.model_file("predator_model.js")).startswith(b"window.TRANSFORMER_PARAMS = ")
    run(TRAIN, credentials, "evaluate", **settings, EVAL_GAMES=3, EVAL_STEPS=100, EVAL_MAX_BOIDS=8)
    assert {r["protocol"] for r in store.read_json(f"{layout.eval}/report.json")["results"]} == {"default", "legacy"}
