# The CPU generator image: rust_gen built in a Rust builder stage, the generate job's Python
# packages installed into a folder in a Python builder stage, and both copied onto distroless
# Python (Debian 12's Python 3.11, no shell, no package manager). Entry point: the generate job
# (settings from environment variables). Base images are build arguments so tests can substitute
# local ones; defaults are pinned tags. The final stage has no RUN: the runtime has no shell.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
# Must be Python 3.11 like the runtime: the compiled wheels (pydantic-core, aiohttp) are cp311.
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12:nonroot

FROM ${RUST_IMAGE} AS rust
WORKDIR /src
COPY rust_gen/Cargo.toml rust_gen/Cargo.lock rust_gen/
COPY rust_gen/src rust_gen/src
RUN cargo build --release --locked --manifest-path rust_gen/Cargo.toml \
    && strip rust_gen/target/release/rust_gen

FROM ${PYTHON_IMAGE} AS python
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY pyproject.toml README.md /src/
COPY common /src/common
COPY jobs /src/jobs
COPY trainer /src/trainer
# Only the generate job's dependencies. Bytecode is compiled in the same step (the runtime user
# cannot write it, and botocore would otherwise be compiled on every start); botocore keeps only
# the service models S3 and credentials need; console scripts would point at this stage's Python.
RUN python3 -m pip install --no-compile --target /opt/ludus /src \
    && find /opt/ludus/botocore/data -mindepth 1 -maxdepth 1 -type d \
        ! -name s3 ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} + \
    && rm -rf /opt/ludus/bin \
    && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/ludus \
    && mkdir -p /home/ludus

FROM ${RUNTIME_IMAGE}
ENV PYTHONPATH=/opt/ludus \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GENERATOR_BIN=/usr/local/bin/rust_gen \
    HOME=/home/ludus
COPY --from=python /opt/ludus /opt/ludus
COPY --from=python --chown=10001:10001 /home/ludus /home/ludus
COPY --from=rust /src/rust_gen/target/release/rust_gen /usr/local/bin/rust_gen
ARG GIT_REVISION=unknown
ENV GIT_REVISION=${GIT_REVISION}
USER 10001:10001
WORKDIR /home/ludus
ENTRYPOINT ["python3", "-m", "jobs"]
CMD ["generate"]
