"""Issue 18: the embedded stack keeps its state across a clean restart and a crash.

One state dir, three lives of the stack (``EmbeddedStack(state_dir=D)``, every service in
its own process, the moto server journaling to ``D/aws``):

1. **up**: a tenant's API key, the tenant's project (made through the REST API), a
   labelled training video, a trained model (RUNNING once the analyses used it), two
   analyses COMPLETED with summaries and reports. Everything the stack holds is listed
   (every S3 object version, every DynamoDB item) and the stack is stopped cleanly.
2. **up again** on the same state dir: the moto server loads exactly what was listed,
   every job, project row (batches, datasets, model versions) and key is the same, the
   admin key is the one of the first start, the model version is RUNNING again by itself,
   the tenant key answers 200 with the old summaries and reports, and a new analysis with
   the restored model completes with detections.
3. **crash**: while an analysis is being framed or analysed and a second training of the
   dataset (what ``brandlens train --again`` asks for) is running, and while a writer puts
   a numbered marker (an S3 object and a DynamoDB item) every 50 ms, every process of
   the stack is SIGKILLed at once (``EmbeddedStack.crash``). After the next start
   nothing saved before is lost, the analysis ends COMPLETED (or FAILED with a reason),
   the training is started again from scratch by the model-server (its version says
   "restarted after a model-server restart (attempt 2 of 3)" while it runs) and ends
   TRAINED, never TRAINING for ever. The
   newest marker that survived gives how many seconds of acknowledged changes the crash
   lost, printed as ``lost: X s of acknowledged changes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiobotocore.session import get_session

from brandlens_cli.embedded import LOCAL_CREDENTIALS, EmbeddedStack
from brandlens_core.apikeys import ApiKeyStore
from brandlens_core.aws import AwsClients
from brandlens_core.jobs import Job, JobStatus
from brandlens_core.settings import AwsSettings
from brandlens_synth import default_brands
from brandlens_trainer.handler import Command
from brandlens_trainer.models import ModelStatus, ModelVersion, retrain_version_name
from tests.pipeline import FLEET_ENV, Fleet, analysis_video, training_media

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed"),
]

STACK = "keep"
TENANT = "acme-corp"
PROJECT = "shelf"  # made by the tenant through the REST API: its key sees it
TABLES = ("jobs", "projects", "runtime", "apikeys", "idempotency")
UNCHANGING_TABLES = ("jobs", "projects", "apikeys")  # nothing changes them while idle
RETRIED_AFTER_RESTART = "restarted after a model-server restart (attempt 2 of 3)"
# the model-server's own state: rewritten when a version changes status (after a restart too)
MUTABLE_PREFIX = "model-server/state/"
MARKER_EVERY_SECONDS = 0.05
MARKER_PREFIX = "restart-test/marker-"
ANALYSIS_SECONDS = 4.0  # 16 frames at the fleet's 250 ms grid: one batch
CRASH_ANALYSIS_SECONDS = 10.0  # long enough to be caught framing or analysing
DEADLINE_SECONDS = 240.0
TRAINING_DEADLINE_SECONDS = 480.0  # BASE_TRAINING_STEPS: ~20 s idle, minutes on a busy machine


# -- what the stack holds ------------------------------------------------------------------


@dataclass
class Holdings:
    """Every S3 object version (bucket -> (key, version) -> etag, "DM" for a delete marker)
    and every DynamoDB item (table -> key -> item) of the stack."""

    objects: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def object_count(self) -> int:
        return sum(len(v) for v in self.objects.values())

    @property
    def item_count(self) -> int:
        return sum(len(v) for v in self.items.values())

    def missing_from(self, later: Holdings) -> list[str]:
        """What this holds that ``later`` does not (items by key, objects by version)."""
        out = []
        for bucket, versions in self.objects.items():
            for (key, version), etag in versions.items():
                now = later.objects.get(bucket, {}).get((key, version))
                if now != etag and not (now and key.startswith(MUTABLE_PREFIX)):
                    out.append(f"s3://{bucket}/{key}?versionId={version} ({etag} -> {now})")
        for table, items in self.items.items():
            out.extend(f"{table}: {key}" for key in items if key not in later.items.get(table, {}))
        return out


async def holdings(fleet: Fleet) -> Holdings:
    s3, db, names = fleet.clients.s3, fleet.clients.dynamodb, fleet.stack.names
    held = Holdings()
    for bucket in (names.media_bucket, names.artifacts_bucket):
        versions: dict[tuple[str, str], str] = {}
        async for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []):
                versions[(v["Key"], str(v.get("VersionId")))] = v["ETag"]
            for m in page.get("DeleteMarkers", []):
                versions[(m["Key"], str(m.get("VersionId")))] = "DM"
        held.objects[bucket] = versions
    for logical in TABLES:
        table = names.table(logical)
        described = await db.describe_table(TableName=table)
        key_names = [k["AttributeName"] for k in described["Table"]["KeySchema"]]
        items: dict[str, dict[str, Any]] = {}
        async for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                items[json.dumps([item[k] for k in key_names], sort_keys=True)] = item
        held.items[logical] = items
    return held


# -- the stack's lives -----------------------------------------------------------------------


def new_stack(state_dir: Path) -> EmbeddedStack:
    return EmbeddedStack(stack_name=STACK, state_dir=state_dir, extra_env=dict(FLEET_ENV))


@contextlib.asynccontextmanager
async def fleet_on(stack: EmbeddedStack, media_dir: Path) -> AsyncIterator[Fleet]:
    settings = AwsSettings(endpoint_url=stack.endpoint_url)
    async with AwsClients(settings) as clients:
        yield Fleet(stack=stack, clients=clients, brands=default_brands(2), media_dir=media_dir)


@contextlib.asynccontextmanager
async def rekognition(stack: EmbeddedStack) -> AsyncIterator[Any]:
    """A Rekognition client on the stack's model-server."""
    async with get_session().create_client(
        "rekognition",
        region_name="us-east-1",
        endpoint_url=stack.model_server_url,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        yield client


async def served_status(stack: EmbeddedStack, model: ModelVersion) -> dict[str, Any] | None:
    """The model-server's description of a version (None while it does not answer)."""
    assert model.project_arn is not None
    try:
        async with rekognition(stack) as client:
            found = await client.describe_project_versions(
                ProjectArn=model.project_arn, VersionNames=[model.version]
            )
    except Exception:  # the model-server is starting
        return None
    descriptions: list[dict[str, Any]] = found["ProjectVersionDescriptions"]
    return descriptions[0] if descriptions else None


async def wait_served(
    stack: EmbeddedStack, model: ModelVersion, *statuses: str, timeout: float = 180.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await served_status(stack, model)
        if last is not None and last["Status"] in statuses:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"{model.version} not {statuses} in {timeout:.0f}s (last: {last}); "
        f"logs in {stack.state_dir / 'logs'}"
    )


async def job_of(fleet: Fleet, key: str) -> Job | None:
    found = [j for j in await fleet.all_jobs() if j.media.get("key") == key]
    return found[0] if found else None


async def wait_terminal(fleet: Fleet, key: str, timeout: float = DEADLINE_SECONDS) -> Job:
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = await job_of(fleet, key)
        if job is not None and job.terminal:
            return job
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"the job of {key} is stuck: {job.status if job else 'no job'} after {timeout:.0f}s; "
        f"logs in {fleet.stack.state_dir / 'logs'}"
    )


async def analyse(fleet: Fleet, name: str, video: Path) -> tuple[Job, dict[str, Any]]:
    """Upload ``video`` for analysis; the COMPLETED job and its summary."""
    key = f"analysis/{PROJECT}/{name}"
    await fleet.put(key, video)
    job = await wait_terminal(fleet, key)
    assert job.status is JobStatus.COMPLETED, (job.status, job.reason)
    assert job.summary_key
    assert job.report_key
    summary = await fleet.read_json(fleet.stack.names.artifacts_bucket, job.summary_key)
    return job, summary


def detections(summary: dict[str, Any]) -> int:
    return sum(int(brand["detections"]) for brand in summary["brands"].values())


class Api:
    """The REST API (served by ingest) with one key."""

    def __init__(self, stack: EmbeddedStack, key: str) -> None:
        self.url, self.key = stack.api_url, key

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.url}{path}", json=body, headers=headers) as response,
        ):
            data = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(data)
            return response.status, data


# -- the crash's lost changes ------------------------------------------------------------------


@dataclass
class MarkerWriter:
    """Puts marker N as an S3 object and a DynamoDB item every 50 ms, recording the moment
    each write was acknowledged, until the stack dies under it."""

    fleet: Fleet
    acked: dict[str, list[tuple[int, float]]] = field(
        default_factory=lambda: {"s3": [], "dynamodb": []}
    )
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        s3, db, names = self.fleet.clients.s3, self.fleet.clients.dynamodb, self.fleet.stack.names
        n = 0
        while True:
            n += 1
            with contextlib.suppress(Exception):  # the crash: nothing more is acknowledged
                await s3.put_object(
                    Bucket=names.artifacts_bucket, Key=f"{MARKER_PREFIX}{n:06d}", Body=b"%d" % n
                )
                self.acked["s3"].append((n, time.monotonic()))
            with contextlib.suppress(Exception):
                await db.put_item(
                    TableName=names.table("idempotency"),
                    Item={"id": {"S": f"{MARKER_PREFIX}{n:06d}"}, "n": {"N": str(n)}},
                )
                self.acked["dynamodb"].append((n, time.monotonic()))
            await asyncio.sleep(MARKER_EVERY_SECONDS)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def fresh_ack(self, timeout: float = 30.0) -> None:
        """Until a write is acknowledged after this call (then the crash follows at once)."""
        seen = sum(len(a) for a in self.acked.values())
        deadline = time.monotonic() + timeout
        while sum(len(a) for a in self.acked.values()) == seen:
            assert time.monotonic() < deadline, "the marker writer stopped writing"
            await asyncio.sleep(0.001)

    def last_ack(self) -> float:
        return max(acked[-1][1] for acked in self.acked.values())


async def surviving_markers(fleet: Fleet) -> dict[str, set[int]]:
    names = fleet.stack.names
    s3_markers: set[int] = set()
    async for page in fleet.clients.s3.get_paginator("list_objects_v2").paginate(
        Bucket=names.artifacts_bucket, Prefix=MARKER_PREFIX
    ):
        s3_markers.update(
            int(o["Key"].removeprefix(MARKER_PREFIX)) for o in page.get("Contents", [])
        )
    db_markers: set[int] = set()
    async for page in fleet.clients.dynamodb.get_paginator("scan").paginate(
        TableName=names.table("idempotency"), ConsistentRead=True
    ):
        db_markers.update(
            int(i["n"]["N"])
            for i in page.get("Items", [])
            if i["id"]["S"].startswith(MARKER_PREFIX)
        )
    return {"s3": s3_markers, "dynamodb": db_markers}


def lost_seconds(acked: list[tuple[int, float]], survived: set[int]) -> tuple[float, int]:
    """Seconds between the last acknowledged write and the newest acknowledged one that
    survived (0 when the last survived), and how many acknowledged writes are missing."""
    missing = [n for n, _ in acked if n not in survived]
    kept = [at for n, at in acked if n in survived]
    newest_kept = max(kept) if kept else acked[0][1]
    return (acked[-1][1] - newest_kept if missing else 0.0), len(missing)


# -- the test ----------------------------------------------------------------------------------


async def test_state_survives_a_clean_restart_and_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    state, media = tmp_path / "state", tmp_path / "media"
    brands = default_brands(2)
    timings: dict[str, float] = {}
    stack = new_stack(state)
    running: EmbeddedStack | None = stack
    try:
        videos, _ = await asyncio.gather(
            asyncio.gather(
                asyncio.to_thread(training_media, media, brands, seconds=12, seed=3),
                *(
                    asyncio.to_thread(analysis_video, media, brands, seconds=s, seed=seed)
                    for s, seed in (
                        (ANALYSIS_SECONDS, 41),
                        (ANALYSIS_SECONDS, 42),
                        (ANALYSIS_SECONDS, 43),
                        (CRASH_ANALYSIS_SECONDS, 44),
                    )
                ),
            ),
            stack.start(),
        )
        training_video, *clips = videos
        assert stack.restored == {} or stack.restored["objects"] == 0

        # -- 1. up: a tenant, its project, a trained model, two analyses -------------------
        async with fleet_on(stack, media) as fleet:
            await stack.wait_for_api()
            assert stack.api_key is not None
            admin_key = stack.api_key
            tenant_key, _ = await ApiKeyStore(
                fleet.clients.dynamodb, stack.names.table("apikeys")
            ).create("restart test", tenant=TENANT)
            tenant = Api(stack, tenant_key)
            status, made_project = await tenant.call(
                "POST", "/v1/projects", {"name": PROJECT, "brands": [b.name for b in brands]}
            )
            assert status == 201, made_project
            await fleet.submit_training(PROJECT, training_video)
            model = await fleet.wait_trained(PROJECT, TRAINING_DEADLINE_SECONDS)
            timings["trained"] = time.monotonic() - started
            first = [await analyse(fleet, f"clip-{i}.mp4", clips[i]) for i in (0, 1)]
            for _, summary in first:
                assert detections(summary) > 0, summary["brands"]
            model = await fleet.models.get(PROJECT, model.version) or model
            assert (await wait_served(stack, model, "RUNNING"))["Status"] == "RUNNING"
            reports = {
                job.job_id: await tenant.call("GET", f"/v1/jobs/{job.job_id}/report")
                for job, _ in first
            }
            assert all(status == 200 for status, _ in reports.values()), reports
            before = await holdings(fleet)
            jobs_before = {j.job_id: j for j in await fleet.all_jobs()}
        timings["first_life"] = time.monotonic() - started
        assert {j.status for j in jobs_before.values()} == {JobStatus.COMPLETED}
        assert len(jobs_before) == 3  # the training video and the two analyses
        assert any("batch#" in k for k in before.items["projects"])
        assert any("dataset#" in k for k in before.items["projects"])
        assert any("model#" in k for k in before.items["projects"])
        await stack.stop()
        running = None

        # -- 2. up again: everything is back and works ---------------------------------------
        stack = running = new_stack(state)
        await stack.start()
        timings["restarted"] = time.monotonic() - started
        print(f"restored after a clean stop: {stack.restored}")
        assert stack.restored["objects"] == before.object_count, (stack.restored, before)
        assert stack.restored["items"] == before.item_count, (stack.restored, before)
        assert stack.api_key == admin_key
        async with fleet_on(stack, media) as fleet:
            after = await holdings(fleet)
            assert before.missing_from(after) == []
            for table in UNCHANGING_TABLES:
                assert after.items[table] == before.items[table], table
            for _, summary in first:
                assert detections(summary) > 0
            await stack.wait_for_api()
            tenant = Api(stack, tenant_key)
            status, listed = await tenant.call("GET", "/v1/projects")
            assert status == 200
            assert [p["name"] for p in listed["items"]] == [PROJECT], listed
            for job, summary in first:
                status, served = await tenant.call("GET", f"/v1/jobs/{job.job_id}/summary")
                assert (status, served) == (200, summary)
                assert (
                    await tenant.call("GET", f"/v1/jobs/{job.job_id}/report") == reports[job.job_id]
                )
            status, _ = await Api(stack, admin_key).call("GET", f"/v1/projects/{PROJECT}")
            assert status == 200
            back = await wait_served(stack, model, "RUNNING", "FAILED")
            assert back["Status"] == "RUNNING", back
            timings["model_running_again"] = time.monotonic() - started
            third, summary = await analyse(fleet, "clip-2.mp4", clips[2])
            assert third.model_arn == model.version_arn
            assert detections(summary) > 0, summary["brands"]
            status, page = await tenant.call("GET", f"/v1/jobs/{third.job_id}/detections")
            assert status == 200
            assert page["items"], page
            timings["analysed_after_restart"] = time.monotonic() - started

            # -- 3. crash in the middle of a training and of an analysis -------------------
            saved = await holdings(fleet)
            writer = MarkerWriter(fleet)
            writer.start()
            request_id = uuid.uuid4().hex
            retrain = retrain_version_name(model.dataset_id, request_id)
            command = Command(
                command="train", project=PROJECT, dataset_id=model.dataset_id,
                request_id=request_id, again=True,
            )  # fmt: skip  # what `brandlens train --again` sends
            trainer_queue = await fleet.clients.sqs.get_queue_url(
                QueueName=stack.names.queue("trainer")
            )
            await fleet.clients.sqs.send_message(
                QueueUrl=trainer_queue["QueueUrl"], MessageBody=command.model_dump_json()
            )
            training = await _training_started(fleet, retrain)
            crash_key = f"analysis/{PROJECT}/crash.mp4"
            await fleet.put(crash_key, clips[3])
            in_flight = await _caught_in_flight(fleet, crash_key)
            served = await served_status(stack, training)
            assert served is not None
            assert served["Status"] == "TRAINING_IN_PROGRESS", served
            await writer.fresh_ack()  # a loaded machine slows the writer: crash right after
            crashed_at = time.monotonic()
            await stack.crash()
            running = None
            await writer.stop()
        timings["crashed"] = crashed_at - started
        print(
            f"crashed with job {in_flight.job_id} {in_flight.status.value} and version "
            f"{retrain} {served['Status']} ({served.get('StatusMessage')})"
        )
        assert all(writer.acked.values()), writer.acked
        assert crashed_at - writer.last_ack() < 0.5  # it wrote right up to the crash

        stack = running = new_stack(state)
        await stack.start()
        print(f"restored after the crash: {stack.restored}")
        assert stack.api_key == admin_key
        async with fleet_on(stack, media) as fleet:
            retried = await wait_served(
                stack, training, "TRAINING_IN_PROGRESS", "TRAINING_COMPLETED", "STARTING",
                "RUNNING", "TRAINING_FAILED",
            )  # fmt: skip
            print(
                f"after the crash the training is {retried['Status']}: "
                f"{retried.get('StatusMessage')}"
            )
            if retried["Status"] == "TRAINING_IN_PROGRESS":  # not yet done: says it is a retry
                assert RETRIED_AFTER_RESTART in retried.get("StatusMessage", ""), retried
            survived = await surviving_markers(fleet)
            worst = 0.0
            for kind, acked in writer.acked.items():
                lost, missing = lost_seconds(acked, survived[kind])
                worst = max(worst, lost)
                print(
                    f"{kind}: {len(acked)} markers acknowledged, newest {acked[-1][0]}; "
                    f"{missing} missing after the crash"
                )
            print(f"lost: {worst:.3f} s of acknowledged changes")
            assert worst <= 1.0
            now = await holdings(fleet)
            assert saved.missing_from(now) == []
            for key, item in saved.items["jobs"].items():  # every finished job as it was
                was, job_now = Job.from_item(item), Job.from_item(now.items["jobs"][key])
                assert job_now.status is was.status is JobStatus.COMPLETED
                assert (job_now.summary_key, job_now.report_key, job_now.batches_done) == (
                    was.summary_key, was.report_key, was.batches_done,
                )  # fmt: skip
            assert now.items["apikeys"] == saved.items["apikeys"]

            job = await wait_terminal(fleet, crash_key)
            assert job.status is JobStatus.COMPLETED or (
                job.status is JobStatus.FAILED and job.reason
            ), (job.status, job.reason)
            print(f"the interrupted analysis ended {job.status.value} ({job.reason})")
            if job.status is JobStatus.COMPLETED:
                tally = await fleet.frame_tally(job)
                assert tally.problems() == [], tally.problems()
            ended = await _training_ended(fleet, retrain)
            print(f"the interrupted training ended {ended.status.value}: {ended.reason}")
            # the model-server trained the interrupted version again from scratch
            assert ended.status is ModelStatus.TRAINED, ended
            done = await served_status(stack, ended)
            assert done is not None
            assert done["Status"] in ("TRAINING_COMPLETED", "STARTING", "RUNNING"), done
            versions = {v.version: v.status for v in await fleet.models.all(PROJECT)}
            assert versions[model.version] is ModelStatus.TRAINED, versions
            status, _ = await Api(stack, tenant_key).call("GET", f"/v1/jobs/{job.job_id}")
            assert status == 200
            timings["after_crash"] = time.monotonic() - started
        await stack.stop()
        running = None
    finally:
        if running is not None:
            await running.stop()
    with capsys.disabled():
        print(
            "\nlocal state restart: "
            + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
            + f"; total {time.monotonic() - started:.0f}s"
        )


async def _training_started(fleet: Fleet, version: str) -> ModelVersion:
    """Until the trainer has asked the model-server to train ``version`` and it trains."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = await fleet.models.get(PROJECT, version)
        if found is not None and found.version_arn is not None:
            assert found.status is ModelStatus.TRAINING, found
            served = await served_status(fleet.stack, found)
            if served is not None and served["Status"] == "TRAINING_IN_PROGRESS":
                return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"the second training {version} did not start in 60s")


async def _caught_in_flight(fleet: Fleet, key: str) -> Job:
    """The job of ``key`` while it is framed or analysed."""
    deadline = time.monotonic() + 60
    job = None
    while time.monotonic() < deadline:
        job = await job_of(fleet, key)
        if job is not None and job.status in (JobStatus.FRAMING, JobStatus.ANALYZING):
            return job
        assert job is None or not job.terminal, f"{key} finished before the crash: {job}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job of {key} was never seen framing or analysing: {job}")


async def _training_ended(fleet: Fleet, version: str) -> ModelVersion:
    deadline = time.monotonic() + DEADLINE_SECONDS
    found = None
    while time.monotonic() < deadline:
        found = await fleet.models.get(PROJECT, version)
        assert found is not None, f"the version {version} is lost"
        if found.status is not ModelStatus.TRAINING:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"{version} still TRAINING after {DEADLINE_SECONDS:.0f}s: {found}; "
        f"logs in {fleet.stack.state_dir / 'logs'}"
    )
