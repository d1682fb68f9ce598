"""The whole local stack stops and starts again: moto too, its S3 objects restored.

``brandlens up --state-dir DIR`` keeps the stack's state across restarts: the moto
server's S3 objects come back, and the model-server finds its state (JSON in the
artifacts bucket) and its cache dir (``DIR/model-server``) as they were. Here the
first generation (moto server + model-server) is stopped, by SIGTERM or SIGKILL,
every S3 object of the stack is copied into a brand-new moto server on another port
(what moto's persistence restores), and a new model-server starts on it with the same
cache dir, as the embedded stack does. Every version must end in a stable state:

| before the stop | after the restart |
|---|---|
| RUNNING, STARTING | STARTING, then RUNNING by itself (same inference units); detects |
| TRAINING_IN_PROGRESS, running | trained again from scratch (same manifests, output, |
|   | budget), saying "restarted after a model-server restart (attempt 2 of 3)"; COMPLETED |
| TRAINING_IN_PROGRESS, queued | queued again ("queued again after a model-server |
|   | restart"), after the interrupted run; COMPLETED |
| STOPPING | STOPPED (and starts again) |
| DELETING | deleted |
| TRAINING_COMPLETED, STOPPED | unchanged |
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from brandlens_cli.embedded import MotoServer
from brandlens_core.aws import AwsClients
from brandlens_core.settings import AwsSettings
from brandlens_core.stack import StackNames, define, deploy
from tests.integration.test_model_server_support import (
    ModelServerHarness,
    pid_alive,
    png_with_red_square,
    rekognition,
    train,
    unique,
    version_status,
    wait_status,
)
from tests.support import Stack, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

QUEUED = "queued: waiting for a training slot"
RETRY = "restarted after a model-server restart (attempt 2 of 3)"


@dataclass
class Generation:
    """One life of the stack: a moto server, its clients, the deployed stack."""

    moto: MotoServer
    stack: Stack


class RestartableStack:
    """A stack on a private moto server that can be stopped and started with its S3 kept."""

    def __init__(self, tmp_path: Path, names: StackNames, exits: AsyncExitStack) -> None:
        self.tmp_path = tmp_path
        self.names = names
        self.exits = exits
        self.generations: list[Generation] = []

    async def start(self, objects: dict[str, dict[str, bytes]] | None = None) -> Stack:
        n = len(self.generations) + 1
        moto = MotoServer(log_path=self.tmp_path / f"moto-{n}.log")
        moto.start()
        self.exits.callback(moto.stop)
        settings = AwsSettings(endpoint_url=moto.endpoint_url)  # type: ignore[arg-type]
        clients = await self.exits.enter_async_context(AwsClients(settings))
        queue_urls = await deploy(clients, define(self.names))
        for bucket, contents in (objects or {}).items():
            for key, body in contents.items():
                await clients.s3.put_object(Bucket=bucket, Key=key, Body=body)
        stack = Stack(
            names=self.names,
            queue_urls=queue_urls,
            clients=clients,
            endpoint_url=moto.endpoint_url,
        )
        self.generations.append(Generation(moto, stack))
        return stack

    async def snapshot(self) -> dict[str, dict[str, bytes]]:
        """Every object of the stack's buckets, as moto's persistence would restore them."""
        s3 = self.generations[-1].stack.clients.s3
        objects: dict[str, dict[str, bytes]] = {}
        for bucket in (self.names.media_bucket, self.names.artifacts_bucket):
            objects[bucket] = {}
            async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    got = await s3.get_object(Bucket=bucket, Key=obj["Key"])
                    objects[bucket][obj["Key"]] = await got["Body"].read()
        return objects

    def kill_moto(self) -> None:
        """The moto server dies (SIGKILL): only what was snapshotted survives."""
        process = self.generations[-1].moto._process
        assert process is not None
        process.kill()
        process.wait()


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[RestartableStack]:
    async with AsyncExitStack() as exits:
        yield RestartableStack(tmp_path, StackNames("t" + unique("r")[2:]), exits)


def _version_key(project_arn: str, version: str) -> str:
    return f"model-server/state/projects/{project_arn.split('/')[1]}/versions/{version}.json"


def _set_status(objects: dict[str, dict[str, bytes]], bucket: str, key: str, status: str) -> None:
    """A server killed between the two writes of a transition leaves ``status`` behind."""
    record: dict[str, Any] = json.loads(objects[bucket][key])
    record["status"] = status
    objects[bucket][key] = json.dumps(record).encode()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_every_version_ends_stable_after_the_whole_stack_restarts(
    restartable: RestartableStack, tmp_path: Path, how: str
) -> None:
    stack = await restartable.start()
    harness = ModelServerHarness(stack, tmp_path)
    try:
        await _restart_and_check(restartable, harness, stack, tmp_path, how)
    finally:
        await harness.stop_all()


async def _restart_and_check(
    restartable: RestartableStack,
    harness: ModelServerHarness,
    stack: Stack,
    tmp_path: Path,
    how: str,
) -> None:
    first = await harness.start()
    wait_forever = {
        "mode": "wait",
        "release_key": unique("gates/never"),
        "marker_dir": str(harness.markers),
    }
    async with rekognition(first) as client:
        project, running_arn, running = await train(client, stack)
        _, starting_arn, starting = await train(client, stack, project_arn=project)
        _, stopping_arn, stopping = await train(client, stack, project_arn=project)
        _, _, stopped = await train(client, stack, project_arn=project)
        _, _, deleting = await train(client, stack, project_arn=project)
        _, _, trained = await train(client, stack, project_arn=project)
        stopped_arn = (await version_status(client, project, stopped))["ProjectVersionArn"]
        for arn, units in (
            (running_arn, 2),
            (starting_arn, 1),
            (stopping_arn, 1),
            (stopped_arn, 1),
        ):
            await client.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=units)
        for name in (running, starting, stopping, stopped):
            await wait_status(client, project, name, "RUNNING")
        await client.stop_project_version(ProjectVersionArn=stopped_arn)
        await wait_status(client, project, stopped, "STOPPED")
        _, _, training = await train(
            client, stack, directive=wait_forever, project_arn=project, wait=False
        )
        await eventually(
            lambda: _message_is(client, project, training, "training: 42%"),
            message="training shows progress",
        )
        # MAX_CONCURRENT_TRAININGS is 1: this one waits for the slot
        _, _, queued = await train(client, stack, project_arn=project, wait=False)
        assert (await version_status(client, project, queued))["StatusMessage"] == QUEUED
        before = {name: await version_status(client, project, name) for name in (trained, stopped)}
    trainer_pid = int((harness.markers / f"{training}.pid").read_text())
    cache = tmp_path / "cache"
    [interrupted_dir] = (cache / "training").glob(f"*-{training}-*")  # its work dir
    first_spec = json.loads((harness.markers / f"{training}.spec.json").read_text())
    project_name = project.split("/")[1]
    assert (cache / "models" / project_name / stopping).is_dir()

    # -- the whole stack stops: the model-server, then moto -------------------------
    if how == "SIGKILL":
        await first.kill()
    else:
        assert await first.stop() == 0, harness.log_text()
        assert (harness.markers / f"{training}.sigterm").exists()
    objects = await restartable.snapshot()
    restartable.kill_moto()
    await eventually(lambda: _gone(trainer_pid), message="the trainer does not outlive its server")

    # transitions cut between their two writes
    artifacts = stack.names.artifacts_bucket
    _set_status(objects, artifacts, _version_key(project, starting), "STARTING")
    _set_status(objects, artifacts, _version_key(project, stopping), "STOPPING")
    _set_status(objects, artifacts, _version_key(project, deleting), "DELETING")
    statuses = {
        json.loads(body)["version"]: json.loads(body)["status"]
        for key, body in objects[artifacts].items()
        if key.startswith("model-server/state/") and "/versions/" in key
    }
    assert statuses == {
        running: "RUNNING",
        starting: "STARTING",
        stopping: "STOPPING",
        stopped: "STOPPED",
        deleting: "DELETING",
        trained: "TRAINING_COMPLETED",
        training: "TRAINING_IN_PROGRESS",
        queued: "TRAINING_IN_PROGRESS",
    }

    # -- the whole stack starts again: a new moto (new port) with the objects back ----
    restored = await restartable.start(objects)
    assert restored.endpoint_url != stack.endpoint_url
    harness.stack = restored
    second = await harness.start()
    async with rekognition(second) as client:
        # the interrupted training runs again from scratch, first; the queued one waits
        await eventually(
            lambda: _message_is(client, project, training, f"training: 42%; {RETRY}"),
            message="the interrupted training runs again and says so",
        )
        again_queued = await version_status(client, project, queued)
        assert again_queued["Status"] == "TRAINING_IN_PROGRESS", again_queued
        assert again_queued["StatusMessage"] == (
            f"{QUEUED}; queued again after a model-server restart"
        )
        retried = await version_status(client, project, training)
        assert retried["Status"] == "TRAINING_IN_PROGRESS"
        assert "TrainingEndTimestamp" not in retried
        # the same request: manifests, output, budget (a fresh one), seed
        retry_spec = json.loads((harness.markers / f"{training}.spec.json").read_text())
        assert retry_spec.pop("server_pid") != first_spec.pop("server_pid")
        retry_dir = Path(retry_spec.pop("work_dir"))
        assert first_spec.pop("work_dir") == str(interrupted_dir)
        assert retry_spec == first_spec
        # the interrupted run's work dir is gone; the retry has a fresh one
        assert not interrupted_dir.exists()
        assert retry_dir.is_dir()
        assert retry_dir != interrupted_dir

        # RUNNING and STARTING come back to RUNNING by themselves, same units, and detect
        for name, arn, units in ((running, running_arn, 2), (starting, starting_arn, 1)):
            back = await wait_status(client, project, name, "RUNNING", "FAILED")
            assert back["Status"] == "RUNNING", back
            assert back["MinInferenceUnits"] == units
            found = await client.detect_custom_labels(
                ProjectVersionArn=arn, Image={"Bytes": png_with_red_square()}
            )
            assert found["CustomLabels"][0]["Name"] == "acme"

        assert (await version_status(client, project, stopping))["Status"] == "STOPPED"
        listed = await client.describe_project_versions(ProjectArn=project)
        names = {d["ProjectVersionArn"].split("/")[3] for d in listed["ProjectVersionDescriptions"]}
        assert deleting not in names
        assert not await _exists(restored, artifacts, _version_key(project, deleting))
        for name, description in before.items():
            assert await version_status(client, project, name) == description

        # the retried training completes, then the queued one gets the slot and completes
        await restored.clients.s3.put_object(
            Bucket=restored.names.media_bucket, Key=wait_forever["release_key"], Body=b""
        )
        for name in (training, queued):
            done = await wait_status(client, project, name, "TRAINING_COMPLETED", "TRAINING_FAILED")
            assert done["Status"] == "TRAINING_COMPLETED", done
            assert done["StatusMessage"] == "The model is ready to run."
            assert done["EvaluationResult"]["F1Score"] == 0.9

        # nothing of the interrupted work is left on disk
        assert not list((cache / "training").glob("*"))
        assert not (cache / "models" / project_name / stopping).exists()
        assert not (cache / "models" / project_name / stopped).exists()

        # the recovered versions are usable, and a retrain gets the training slot
        await client.start_project_version(ProjectVersionArn=stopping_arn, MinInferenceUnits=1)
        await wait_status(client, project, stopping, "RUNNING")
        _, _, again = await train(client, restored, project_arn=project)
        assert (await version_status(client, project, again))["Status"] == "TRAINING_COMPLETED"
        health = await second.health()
        assert health["models_running"] == 3
        assert health["trainings_running"] == health["trainings_queued"] == 0


async def _message_is(client: Any, project: str, version: str, message: str) -> bool:
    return (await version_status(client, project, version)).get("StatusMessage") == message


async def _gone(pid: int) -> bool:
    return not pid_alive(pid)


async def _exists(stack: Stack, bucket: str, key: str) -> bool:
    listed = await stack.clients.s3.list_objects_v2(Bucket=bucket, Prefix=key)
    return bool(listed.get("Contents"))
