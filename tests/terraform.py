"""Running Terraform offline in tests: the hashicorp/aws provider from a filesystem mirror,
working directories and state kept out of the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[1] / "infra"
PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)


def terraform_binary() -> str | None:
    return shutil.which("terraform")


def provider_mirror() -> Path | None:
    """A directory holding registry.terraform.io/hashicorp/aws (BRANDLENS_TF_MIRROR, or a
    usual place, or a bounded search of the file system)."""
    given = os.environ.get("BRANDLENS_TF_MIRROR")
    candidates = [given] if given else []
    candidates += [os.path.expanduser(c) for c in MIRROR_CANDIDATES]
    for candidate in candidates:
        if candidate and (Path(candidate) / PROVIDER).is_dir():
            return Path(candidate)
    try:
        found = subprocess.run(
            ["find", "/", "-xdev", "-maxdepth", "9", "-type", "d", "-path", f"*/{PROVIDER}",
             "-not", "-path", "/proc/*"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in found.stdout.splitlines():
        if line.strip() and "/.terraform/" not in line:
            return Path(line.strip()).parents[2]
    return None


@dataclass
class Terraform:
    """``terraform`` in a copy of ``infra/`` under ``work`` (its data dir, lock file, state
    and CLI config too: nothing is written into the source tree)."""

    env: str
    work: Path
    mirror: Path

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.copy = self.work / "infra"
        shutil.copytree(
            INFRA, self.copy, dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
        )  # fmt: skip
        rc = self.work / "terraform.rc"
        rc.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path = "{self.mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
        )
        self.environ = os.environ | {
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_DATA_DIR": str(self.work / "data"),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }

    @property
    def directory(self) -> Path:
        return self.copy / "envs" / self.env

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["terraform", f"-chdir={self.directory}", *args],
            capture_output=True, text=True, env=self.environ, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def init(self) -> None:
        self.run("init", "-input=false", "-backend=false", "-no-color")

    def state_args(self) -> list[str]:
        return [f"-state={self.work / 'terraform.tfstate'}"]

    def apply(self, variables: dict[str, str]) -> None:
        self.run(
            "apply", "-input=false", "-auto-approve", "-no-color", *self.state_args(),
            *(f"-var={k}={v}" for k, v in variables.items()),
        )  # fmt: skip

    def destroy(self, variables: dict[str, str]) -> None:
        self.run(
            "destroy", "-input=false", "-auto-approve", "-no-color", *self.state_args(),
            *(f"-var={k}={v}" for k, v in variables.items()),
        )  # fmt: skip

    def outputs(self) -> dict[str, Any]:
        result = self.run("output", "-json", *self.state_args())
        return {k: v["value"] for k, v in json.loads(result.stdout).items()}
