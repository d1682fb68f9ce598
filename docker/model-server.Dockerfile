# syntax=docker/dockerfile:1
# brandlens model-server: `python -m brandlens_model_server`. Build from the repository root:
#   docker build -f docker/model-server.Dockerfile -t brandlens-model-server .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtual environment with the package and this service's extras only
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# PyPI's Linux torch wheel is a CUDA build of several GB: take the CPU build by default;
# a GPU image passes --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Only torch itself comes from that index (--no-deps); its dependencies (and a CUDA
# build's nvidia-* wheels) come from PyPI in the next step, pinned by constraints.txt.
RUN /opt/venv/bin/pip install --no-deps --index-url "${TORCH_INDEX_URL}" torch==2.13.0
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
# The installed torch satisfies the extra's torch==2.13.0 whatever its build label (+cpu,
# +cu128). constraints.txt pins the CPU build (torch==2.13.0+cpu), so its torch line is left
# out here: with it, a GPU build would be "downgraded" to +cpu, which PyPI does not have.
RUN grep -v '^torch==' constraints.txt > /tmp/constraints.txt \
 && /opt/venv/bin/pip install -c /tmp/constraints.txt ".[model-server]" \
 && /opt/venv/bin/python -c "import torch; print('torch', torch.__version__)"

# -- runtime: slim, non-root, the virtual environment and nothing else
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin brandlens
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRANDLENS_MODEL_SERVER_HOST=0.0.0.0 \
    BRANDLENS_MODEL_SERVER_PORT=9321 \
    BRANDLENS_MODEL_SERVER_CACHE_DIR=/cache
# models and training work directories (mount a volume with room: tens of GB)
RUN mkdir -p /cache && chown 10001 /cache
VOLUME ["/cache"]
USER 10001
EXPOSE 9321
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9321/health', timeout=5)"]
ENTRYPOINT ["python", "-m", "brandlens_model_server"]
