# syntax=docker/dockerfile:1
# brandlens framer: `python -m brandlens_framer`. Build from the repository root:
#   docker build -f docker/framer.Dockerfile -t brandlens-framer .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtual environment with the package and this service's extras only
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
RUN /opt/venv/bin/pip install -c constraints.txt ".[framer]"

# -- runtime: slim, non-root, the virtual environment and nothing else
FROM ${PYTHON_IMAGE}
# ffmpeg and ffprobe sample the frames (only this image carries them); Debian's
# bookworm package, which takes its security updates at each rebuild
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin brandlens
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRANDLENS_FRAMER_WORKER_HEARTBEAT_FILE=/tmp/heartbeat
USER 10001
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-m", "brandlens_core.health", "--file", "/tmp/heartbeat", "--max-age-seconds", "120"]
ENTRYPOINT ["python", "-m", "brandlens_framer"]
