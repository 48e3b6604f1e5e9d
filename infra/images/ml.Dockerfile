# The ML workload image: the `mlops` CLI, the MLflow tracking server (Postgres/S3 drivers and the
# Prometheus exporter behind `--expose-prometheus`) and Feast, with the Feast repository at
# /app/feature_repo (components.types.FEATURE_REPO_DIR). Kubernetes overrides the command
# (`mlflow server`, `feast ... serve`, `mlops ...`); the entrypoint is the CLI.
#
#   docker buildx build -f infra/images/ml.Dockerfile -t <repo>:<git sha> .    # context: repo root
#   (scripts/build_images.py does this, pushes, and pins the digest in the stack config)
#
# Runtime contract (components/security.py): runs as uid/gid 10001 with a read-only root
# filesystem and an emptyDir at /tmp, so HOME, caches, MLflow's Prometheus multiprocess dir and
# every output live under /tmp; nothing in the image needs to be writable.
#
# Base images are pinned by digest: the multi-arch index digests of python:3.11.14-slim-bookworm
# and ghcr.io/astral-sh/uv:0.13.0 as published by Docker Hub / GHCR (taken from public
# digest-pinned Dockerfiles; refresh with
# `docker buildx imagetools inspect python:3.11-slim-bookworm` and bump both Dockerfiles together).
# No `# syntax=` line on purpose: that would pull an unpinned frontend image; the Dockerfile
# frontend built into BuildKit (Docker 23+) supports everything used here.

FROM ghcr.io/astral-sh/uv:0.13.0@sha256:cdc6093146eb3ff6a40107b38f008b789e050e77ad87865e381d9917da55a168 AS uv

FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Compile bytecode at build time (the runtime root filesystem is read-only), copy instead of
# hard-linking from the cache mount, use the image's own interpreter, never download one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, from the lock only: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then the project itself, as a regular (non-editable) install: the runtime needs no sources.
COPY README.md ./
COPY ml ./ml
COPY components ./components
COPY contract ./contract
COPY infra ./infra
# --reinstall-package: uv caches the project's built wheel by its version, so without it a
# rebuild with the cache mount would install yesterday's code (seen in the e2e).
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --reinstall-package mlops-blueprint

FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS runtime
ARG REVISION=unknown
LABEL org.opencontainers.image.title="mlops-ml" \
      org.opencontainers.image.description="mlops CLI, MLflow server, Feast" \
      org.opencontainers.image.revision="${REVISION}"
# A passwd entry for 10001: getpass.getuser() (MLflow's run user) needs one. No home directory:
# HOME is the writable /tmp.
RUN groupadd --gid 10001 mlops \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin mlops
ENV PATH=/app/.venv/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLOPS_BUILD_DIR=/tmp/mlops \
    MPLCONFIGDIR=/tmp/matplotlib \
    FEAST_USAGE=False \
    MLFLOW_ENABLE_TELEMETRY=false
COPY --from=builder /app/.venv /app/.venv
COPY infra/images/feature_repo/ /app/feature_repo/
WORKDIR /app
USER 10001:10001
# No HEALTHCHECK: this image runs batch jobs as well as servers, so Kubernetes probes (set per
# workload in components/) are the health contract: MLflow and Feast answer GET /health.
ENTRYPOINT ["mlops"]
CMD ["--help"]
