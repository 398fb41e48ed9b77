# ludus: the user's commands. Every target sets itself up on a fresh machine.
#   make job GAMES=2000      the whole pipeline on this machine (variables pass through)
#   make test                Rust and Python tests
#   make bench               generator and trainer benchmarks -> bench/results/

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
.PHONY: help setup build job test test-rust test-python lint bench bench-generator bench-trainer clean

help:
	@echo "make job GAMES=2000   run generate -> train -> evaluate on this machine (store: ./store)"
	@echo "make test             run the Rust and Python test suites"
	@echo "make bench            run the benchmarks and write bench/results/"
	@echo "make lint             ruff, cargo fmt --check, cargo clippy"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

$(BIN): $(RUST_SOURCES)
	cd rust_gen && $(CARGO) build --release --locked 2>&1 | tail -n 3
	@touch $@

build: $(BIN)

job: setup build
	$(PY) -m jobs pipeline

test: test-rust test-python

test-rust: build
	cd rust_gen && $(CARGO) test --release --locked

test-python: setup build
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check jobs trainer tests bench
	$(VENV)/bin/ruff format --check jobs trainer tests bench
	cd rust_gen && $(CARGO) fmt --check && $(CARGO) clippy --release --all-targets --locked -- -D warnings

bench: bench-generator bench-trainer

bench-generator: build
	mkdir -p bench/results
	$(BIN) ur bench --out bench/results/generator.json | tee bench/results/generator.md

bench-trainer: setup build
	$(PY) bench/trainer_bench.py

clean:
	rm -rf $(VENV) rust_gen/target store
