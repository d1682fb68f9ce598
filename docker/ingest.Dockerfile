# syntax=docker/dockerfile:1
# brandlens ingest: `python -m brandlens_ingest`. Build from the repository root:
#   docker build -f docker/ingest.Dockerfile -t brandlens-ingest .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtual environment with the package and this service's extras only
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
RUN /opt/venv/bin/pip install -c constraints.txt ".[ingest]"

# -- runtime: slim, non-root, the virtual environment and nothing else
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin brandlens
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRANDLENS_INGEST_API_HOST=0.0.0.0 \
    BRANDLENS_INGEST_API_PORT=8080
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=5)"]
ENTRYPOINT ["python", "-m", "brandlens_ingest"]
