# The BentoML serving image: ml.serve.service:CreditRiskService on port 3000, with /readyz,
# /livez and /metrics (the contract of components/model_serving.py). Same locked environment
# as the ML image (uv.lock, `uv sync --frozen --no-dev`), a different default command.
#
#   docker buildx build -f infra/images/serving.Dockerfile -t <repo>:<git sha> .  # context: repo root
#
# Runtime contract (components/security.py): uid/gid 10001, read-only root filesystem, writable
# /tmp only: BentoML's home, Prometheus multiprocess files and the prediction log go to /tmp.
# Base image digests: see ml.Dockerfile (keep both files on the same digests).

FROM ghcr.io/astral-sh/uv:0.13.0@sha256:cdc6093146eb3ff6a40107b38f008b789e050e77ad87865e381d9917da55a168 AS uv

FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
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
LABEL org.opencontainers.image.title="mlops-serving" \
      org.opencontainers.image.description="BentoML credit-risk service on :3000" \
      org.opencontainers.image.revision="${REVISION}"
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
    BENTOML_HOME=/tmp/bentoml \
    BENTOML_DO_NOT_TRACK=true \
    FEAST_USAGE=False
COPY --from=builder /app/.venv /app/.venv
# The Feast repository (contract.paths.FEATURE_REPO_DIR): serving reads the online store with it.
COPY infra/images/feature_repo/ /app/feature_repo/
WORKDIR /app
USER 10001:10001
EXPOSE 3000
# Kubernetes uses its own probes (readiness GET /readyz, liveness GET /livez); this HEALTHCHECK
# gives `docker run` the same signal. Python's urllib, because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/readyz', timeout=2)"]
CMD ["bentoml", "serve", "ml.serve.service:CreditRiskService", "--host", "0.0.0.0", "--port", "3000"]
