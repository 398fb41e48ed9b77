# The GPU trainer image: PyTorch with CUDA from the pinned base, the trainer and jobs packages,
# and rust_gen (the evaluator plays matches with it). Entry point: the train job; the same image
# runs `evaluate` and `pipeline` (pass the job as the command).
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG BASE_IMAGE=docker.io/pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY rust_gen/Cargo.toml rust_gen/Cargo.lock rust_gen/
COPY rust_gen/src rust_gen/src
RUN cargo build --release --locked --manifest-path rust_gen/Cargo.toml \
    && strip rust_gen/target/release/rust_gen

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GENERATOR_BIN=/usr/local/bin/rust_gen \
    MPLCONFIGDIR=/tmp/matplotlib \
    PATH=/opt/venv/bin:${PATH}
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin ludus
COPY pyproject.toml README.md /src/
COPY common /src/common
COPY jobs /src/jobs
COPY trainer /src/trainer
# The base's torch (with CUDA) stays: the venv sees it and pip does not replace it. On a base
# without torch, pip installs it from PyPI.
RUN python3 -m venv --system-site-packages /opt/venv \
    && pip install "pip>=24.2" \
    && pip install "/src[train]" \
    && rm -rf /src
COPY --from=builder /src/rust_gen/target/release/rust_gen /usr/local/bin/rust_gen
# Last: a new commit with the same sources reuses every layer above (PyTorch's is 6 GB).
ARG GIT_REVISION=unknown
ENV GIT_REVISION=${GIT_REVISION}
USER 10001:10001
WORKDIR /home/ludus
ENTRYPOINT ["python3", "-m", "jobs"]
CMD ["train"]
