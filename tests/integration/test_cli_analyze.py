"""`brandlens analyze` against a running local stack's REST API: what a user sees when the
project is missing, has no model yet, or when no stack runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from brandlens_cli.embedded import EmbeddedStack
from brandlens_core.aws import AwsClients
from brandlens_core.projects import Project, ProjectStore
from brandlens_core.settings import AwsSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
async def local_stack(tmp_path: Path) -> AsyncIterator[EmbeddedStack]:
    stack = EmbeddedStack(
        stack_name="cli-analyze", state_dir=tmp_path / "state", services=("ingest",)
    )
    await stack.start()
    try:
        await stack.wait_for_api()
        yield stack
    finally:
        await stack.stop()


def brandlens(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "brandlens_cli.main", *args],
        capture_output=True, text=True, env=os.environ | {"COLUMNS": "200"}, timeout=120,
        check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


async def test_analyze_says_what_is_missing(local_stack: EmbeddedStack, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    at = ("--state-dir", str(local_stack.state_dir))
    code, out = brandlens("analyze", str(clip), "--project", "nope", *at)
    assert code == 1
    assert "project 'nope' not found" in out
    async with AwsClients(AwsSettings(endpoint_url=local_stack.endpoint_url)) as clients:
        await ProjectStore(clients.dynamodb, local_stack.names.table("projects")).create_project(
            Project(project="fresh", brands=["Acme"])
        )
    code, out = brandlens("analyze", str(clip), "--project", "fresh", *at)
    assert code == 1
    assert "has no trained model yet" in out
    code, out = brandlens(
        "analyze", str(clip), "--project", "fresh", "--api-key", "blk_" + "x" * 43, *at
    )
    assert code == 1
    assert "the API answered 401" in out
    code, out = brandlens(
        "analyze", str(clip), "--project", "fresh", "--state-dir", str(tmp_path / "none")
    )
    assert code == 1
    assert "no local stack running" in out


def test_apikey_commands_create_list_revoke(local_stack: EmbeddedStack) -> None:
    at = ("--state-dir", str(local_stack.state_dir))
    code, out = brandlens("apikey", "create", "ci", "--tenant", "acme", *at)
    assert code == 0, out
    secret = next(line for line in out.splitlines() if line.startswith("blk_"))
    code, out = brandlens("apikey", "list", *at)
    assert code == 0, out
    assert "tenant acme" in out
    assert "local stack" in out  # the key the stack made
    assert secret not in out  # never shown again
    key_id = next(line.split("│")[1].strip() for line in out.splitlines() if "tenant acme" in line)
    code, out = brandlens("apikey", "revoke", key_id, *at)
    assert code == 0, out
    code, out = brandlens("apikey", "create", "bad", *at)
    assert code == 2
    assert "exactly one of --tenant" in out
