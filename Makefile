# ludus: the user's commands. Every target sets itself up on a fresh machine.
#   make job GAMES=2000      the whole pipeline on this machine (variables pass through)
#   make test                Rust and Python tests
#   make bench               generator, trainer and page benchmarks -> bench/results/ (and nothing else there)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CARGO ?= cargo
BIN := rust_gen/target/release/rust_gen
RUST_SOURCES := $(shell find rust_gen/src -name '*.rs') rust_gen/Cargo.toml

# Settings given on the make command line (GAMES=2000 EPOCHS=50 ...) reach the jobs as
# environment variables: make exports command-line variables to its recipes.
.DEFAULT_GOAL := help
.PHONY: help setup controller build job solve sweep test test-rust test-python test-images test-k8s cluster-up cluster-down lint bench bench-generator bench-trainer bench-predator-python bench-predator-trainer bench-web bench-ddp bench-memory bench-sweep web images manifests clean

DOCKER ?= docker
IMAGE_PREFIX ?= ludus
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
GIT_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_FLAGS ?=

help:
	@echo "make job GAMES=2000   run generate -> train -> evaluate on this machine (store: ./store)"
	@echo "make test             run the Rust and Python test suites"
	@echo "make sweep            search train settings with Optuna over one run's shards (TRIALS=8 PARALLEL=2)"
	@echo "make bench            run the benchmarks and write bench/results/"
	@echo "make lint             ruff, import-linter (layers), mypy, cargo fmt --check, cargo clippy, hadolint, actionlint, shellcheck"
	@echo "make images           build the generator and trainer images (DOCKER=podman works too)"
	@echo "make manifests        render k8s/ (shared files) and k8s/<task>/ from jobs/k8s.py"
	@echo "make solve            solve Ur exactly into the store, once (35 minutes on 2 cores, 4 GB)"
	@echo "make web [RUN_ID=..]  serve the predator's page on 127.0.0.1:8000 (the shipped network, or that run's)"
	@echo "make test-images      build both images with podman on a local base and run them against a real S3 server"
	@echo "make test-k8s         a real Kubernetes cluster and registry here: kubectl apply -f k8s/, RUNNER=k8s, RBAC, faults, 2-pod training, the retrain workflow"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -e ".[train,dev]"  # no 3 GB wheel cache beside the venv
	touch $@

setup: $(VENV)/.installed

# What the controller needs to run a pipeline on a cluster (RUNNER=k8s), without PyTorch: a CI
# runner sets this up in seconds. A full setup has it already.
$(VENV)/.controller: pyproject.toml
	@[ -f $(VENV)/.installed ] && [ $(VENV)/.installed -nt pyproject.toml ] || { \
	  $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet --no-cache-dir -e ".[cluster]"; }
	@touch $@

controller: $(VENV)/.controller

$(BIN): $(RUST_SOURCES)
	cd rust_gen && $(CARGO) build --release --locked 2>&1 | tail -n 3
	@touch $@

build: $(BIN)

# On a cluster (RUNNER=k8s) the images hold the generator and the trainer; locally both are set up first.
job: $(if $(filter k8s,$(RUNNER)),controller,setup build)
	$(PY) -m jobs pipeline

solve: setup build
	TASK=ur $(PY) -m jobs solve

# Optuna trials over one run's shards (TRIALS, PARALLEL, SWEEP_SPACE, SWEEP_METRIC; RUNNER=k8s: Indexed Jobs).
sweep: $(if $(filter k8s,$(RUNNER)),controller,setup build)
	$(PY) -m jobs sweep

test: test-rust test-python

test-rust: build
	cd rust_gen && $(CARGO) test --release --locked

test-python: setup build
	$(PY) -m pytest -q --ignore=tests/images --ignore=tests/cluster

lint: setup
	$(VENV)/bin/ruff check common jobs trainer tests bench experiments
	$(VENV)/bin/ruff format --check common jobs trainer tests bench experiments
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	cd rust_gen && $(CARGO) fmt --check && $(CARGO) clippy --release --all-targets --locked -- -D warnings
	$(VENV)/bin/hadolint --failure-threshold warning images/*.Dockerfile
	$(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck .github/workflows/*.yml
	$(VENV)/bin/shellcheck .ci/run

images:
	$(DOCKER) build $(BUILD_FLAGS) --build-arg GIT_REVISION=$(GIT_REVISION) -f images/gen.Dockerfile -t $(IMAGE_PREFIX)-gen:$(IMAGE_TAG) .
	$(DOCKER) build $(BUILD_FLAGS) --build-arg GIT_REVISION=$(GIT_REVISION) -f images/train.Dockerfile -t $(IMAGE_PREFIX)-train:$(IMAGE_TAG) .

manifests: setup
	$(PY) -m jobs.manifests

test-images: setup build
	$(PY) -m pytest -q tests/images

# A real single-node Kubernetes (etcd, API server, controllers, scheduler, kubelet, containerd) on
# this machine with CoreDNS, our images pulled from a real registry (TLS, a password), the user's
# manifests applied, and the retrain workflow run by act (tests/cluster/).
# The Kubernetes binaries and the Go tools are built once into /var/tmp/ludus-k8s (LUDUS_K8S_CACHE).
test-k8s: setup build
	$(PY) -m tests.cluster.cluster build
	$(PY) -m pytest -q tests/cluster

# The same cluster by hand (no registry: push images to your own; `python -m tests.cluster.cluster env` for kubectl).
cluster-up: setup
	$(PY) -m tests.cluster.cluster up

cluster-down: setup
	$(PY) -m tests.cluster.cluster down

bench: bench-generator bench-trainer bench-predator-python bench-predator-trainer bench-web bench-ddp bench-memory bench-sweep

bench-generator: build
	mkdir -p bench/results
	$(BIN) ur bench --out bench/results/generator.json | tee bench/results/generator.md
	$(BIN) predator bench --out bench/results/predator.json | tee bench/results/predator.md

bench-trainer: setup build
	$(PY) bench/ur_trainer_bench.py

bench-predator-python: setup build
	$(PY) bench/predator_python_bench.py --episodes 12

bench-predator-trainer: setup build
	$(PY) bench/predator_trainer_bench.py

bench-web: setup build
	$(PY) bench/predator_web_bench.py

# 1 rank x every core against one rank a core (torchrun, gloo): samples/s and the loss curves.
bench-ddp: setup build
	$(PY) bench/ddp_bench.py

bench-memory: setup build  # about 10 GB of shards under /var/tmp, removed afterwards
	$(PY) bench/memory_bench.py

bench-sweep: setup build
	$(PY) bench/sweep_bench.py

web: setup
	$(PY) -m jobs.web

clean:
	rm -rf $(VENV) rust_gen/target store
