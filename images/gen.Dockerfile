# The CPU generator image: rust_gen built in a builder stage, and the jobs package on a slim
# Python runtime. Entry point: the generate job (settings from environment variables).
# Base images are build arguments so tests can substitute local ones; defaults are pinned tags.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY rust_gen/Cargo.toml rust_gen/Cargo.lock rust_gen/
COPY rust_gen/src rust_gen/src
RUN cargo build --release --locked --manifest-path rust_gen/Cargo.toml \
    && strip rust_gen/target/release/rust_gen

FROM ${RUNTIME_IMAGE}
ARG GIT_REVISION=unknown
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GENERATOR_BIN=/usr/local/bin/rust_gen \
    GIT_REVISION=${GIT_REVISION} \
    PATH=/opt/venv/bin:${PATH}
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin ludus
COPY pyproject.toml README.md /src/
COPY jobs /src/jobs
COPY trainer /src/trainer
# Only the generate job's dependencies, without bytecode; then the installers go, and botocore's
# service models are trimmed to those S3 needs: the image stays small.
RUN python3 -m venv /opt/venv \
    && pip install "pip>=24.2" \
    && pip install --no-compile /src \
    && find /opt/venv/lib/python3*/site-packages/botocore/data -mindepth 1 -maxdepth 1 -type d \
        ! -name s3 ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} + \
    && pip uninstall --yes pip setuptools \
    && rm -rf /src
COPY --from=builder /src/rust_gen/target/release/rust_gen /usr/local/bin/rust_gen
USER 10001:10001
WORKDIR /home/ludus
ENTRYPOINT ["python3", "-m", "jobs"]
CMD ["generate"]
