# syntax=docker/dockerfile:1
# The Nexflow image: one image for gateways (`nexflow serve`) and workers (`nexflow worker`).
#   docker build -t nexflow:local .
# Stages: GraphStudio (Node) and the panel sandbox guest (clang -> wasm32-wasi) are built
# first, so the wheel built from this checkout carries both and the runtime needs neither
# Node nor a compiler. See docs/scale-out.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- GraphStudio: scripts/build_web.sh without its staleness check --------------------------
FROM ${NODE_IMAGE} AS web
WORKDIR /src/connectors/web/app
COPY connectors/web/app/package.json connectors/web/app/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY connectors/web/app/index.html connectors/web/app/tsconfig.json connectors/web/app/vite.config.ts ./
COPY connectors/web/app/src ./src
# vite.config.ts writes to ../static/app, i.e. /src/connectors/web/static/app
RUN npx --no-install vite build --logLevel warn

# --- The panel sandbox guest: scripts/build_guest.sh (QuickJS-NG from its PyPI sdist) -------
FROM ${PYTHON_IMAGE} AS guest
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/build_guest.sh scripts/build_guest.sh
COPY nexflow/sandbox/guest/glue.c nexflow/sandbox/guest/prelude.js nexflow/sandbox/guest/
RUN PYTHON=python3 bash scripts/build_guest.sh

# --- The Python package, installed into a venv that the runtime stage copies ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY nexflow ./nexflow
COPY connectors ./connectors
COPY --from=web /src/connectors/web/static/app ./connectors/web/static/app
COPY --from=guest /src/nexflow/sandbox/guest/build/nexflow_guest.wasm ./nexflow/sandbox/guest/build/
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import connectors.web, nexflow; print('nexflow', nexflow.__version__)"
# Bundled skills and panel templates are found next to the package (skills/model.py:
# parents[2] / "skills", panels/runtime/wiring.py: parents[3] / "panels"), which for an
# installed package is site-packages itself; the wheel does not carry them (yet).
COPY skills /opt/venv/lib/python3.11/site-packages/skills
COPY panels /opt/venv/lib/python3.11/site-packages/panels

# --- Runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# git: workspaces and the git-basic skill; tini: signals and zombie reaping for skill processes
RUN apt-get update \
 && apt-get install -y --no-install-recommends git tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 nexflow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home nexflow \
 && mkdir -p /data /workspaces \
 && chown 10001:10001 /data /workspaces
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    NEXFLOW_HOME=/data \
    NEXFLOW_WORKSPACES__ROOT=/workspaces
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Liveness only: /health answers as soon as the process serves. Orchestrators that route
# traffic use /ready (docker-compose.yml, the Helm chart). Workers override or disable this.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
ENTRYPOINT ["tini", "--"]
# Listening beyond loopback needs NEXFLOW_GATEWAY_TOKEN (the gateway refuses otherwise).
CMD ["nexflow", "serve", "--host", "0.0.0.0", "--port", "8080"]
