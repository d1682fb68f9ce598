# syntax=docker/dockerfile:1
# brandlens labeler: `python -m brandlens_labeler`. Build from the repository root:
#   docker build -f docker/labeler.Dockerfile -t brandlens-labeler .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtual environment with the package and this service's extras only
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
RUN /opt/venv/bin/pip install -c constraints.txt ".[labeler]"

# -- runtime: slim, non-root, the virtual environment and nothing else
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin brandlens
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRANDLENS_LABELER_WORKER_HEARTBEAT_FILE=/tmp/heartbeat \
    BRANDLENS_LABELER_WEBHOOK_HOST=0.0.0.0
# The Label Studio webhook listens only when BRANDLENS_LABELER_WEBHOOK_PORT is set (default
# 0: none); on 0.0.0.0 so that a published port (-p PORT:PORT) reaches it.
USER 10001
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-m", "brandlens_core.health", "--file", "/tmp/heartbeat", "--max-age-seconds", "120"]
ENTRYPOINT ["python", "-m", "brandlens_labeler"]
