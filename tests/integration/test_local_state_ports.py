"""The local stack's addresses stay the same across restarts while their ports are free.

With kept state (``brandlens up``), the REST API's URL, the model-server's and Label
Studio's ports and the labeler's webhook port of the last start are used again: a
user's scripts keep working and Label Studio's saved webhooks still reach the labeler.
A port that something else took meanwhile is replaced by a free one; a throw-away
stack (the demo) keeps nothing.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from brandlens_cli.embedded import EmbeddedStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SERVICES = ("ingest", "model-server")


async def one_life(state_dir: Path, *, persist: bool = True) -> tuple[int, int, str | None]:
    stack = EmbeddedStack(
        stack_name="ports", state_dir=state_dir, services=SERVICES, persist=persist
    )
    try:
        await stack.start()
        await stack.wait_for_api()
        return stack.api_port, stack.model_server_port, stack.api_key
    finally:
        await stack.stop()


async def test_ports_are_kept_while_free_and_replaced_when_taken(tmp_path: Path) -> None:
    state = tmp_path / "state"
    api, model_server, key = await one_life(state)
    saved = json.loads((state / "ports.json").read_text())
    assert saved == {"api": api, "model-server": model_server}

    assert await one_life(state) == (api, model_server, key)  # same URL, same key

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", api))  # something else took the API's port
        squatter.listen()
        moved, same_model_server, same_key = await one_life(state)
    assert moved != api
    assert (same_model_server, same_key) == (model_server, key)
    assert json.loads((state / "ports.json").read_text())["api"] == moved


async def test_a_throw_away_stack_keeps_no_ports(tmp_path: Path) -> None:
    await one_life(tmp_path / "demo", persist=False)
    assert not (tmp_path / "demo" / "ports.json").exists()
    assert not (tmp_path / "demo" / "aws").exists()
