"""The REST API over real HTTP on loopback, against the moto server: auth, tenants,
validation, uploads that become jobs, pagination, results and the report."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from brandlens_core.apikeys import ApiKeyStore
from brandlens_core.events import Purpose
from brandlens_core.jobs import Job, JobStatus, JobStore
from brandlens_core.messages import FrameBatch
from brandlens_core.projects import Project, ProjectStore
from brandlens_inferer.aggregate import AggregationSettings, aggregate
from brandlens_inferer.report import render
from brandlens_ingest.api import ROUTES
from brandlens_ingest.app import start_api
from brandlens_ingest.settings import IngestSettings
from tests.support import Stack, eventually, make_mp4, start_ingest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@dataclass
class Api:
    url: str
    http: aiohttp.ClientSession
    stack: Stack
    admin: str
    alice: str  # tenant "alice"
    bob: str  # tenant "bob"

    async def call(
        self, method: str, path: str, key: str | None = None, **kwargs: Any
    ) -> tuple[int, Any, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        async with self.http.request(method, self.url + path, headers=headers, **kwargs) as r:
            raw = await r.read()
            body: Any = raw
            if r.content_type == "application/json":
                body = json.loads(raw)
            return r.status, body, r.headers


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    keys = ApiKeyStore(stack.clients.dynamodb, stack.names.table("apikeys"))
    admin, _ = await keys.create("ops", admin=True)
    alice, _ = await keys.create("alice's app", tenant="alice")
    bob, _ = await keys.create("bob's app", tenant="bob")
    runner = await start_api(
        stack.clients, stack.names, IngestSettings(api_port=0, api_upload_url_seconds=300)
    )
    assert runner is not None
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as http:
        yield Api(f"http://{host}:{port}", http, stack, admin, alice, bob)
    await runner.cleanup()


def concrete(path: str) -> str:
    return path.replace("{project}", "shop").replace("{job_id}", "job-0123")


async def test_every_route_but_health_needs_a_valid_key(api: Api) -> None:
    status, body, _ = await api.call("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    keys = ApiKeyStore(api.stack.clients.dynamodb, api.stack.names.table("apikeys"))
    revoked, record = await keys.create("old", tenant="alice")
    await keys.revoke(record.key_id)
    for route in ROUTES:
        for headers in (
            {},
            {"Authorization": "Bearer blk_" + "x" * 43},  # well-formed, unknown
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Basic {api.alice}"},  # wrong scheme
            {"Authorization": f"Bearer {revoked}"},
        ):
            status, body, got = await api.call(route.method, concrete(route.path), headers=headers)
            assert status == 401, (route.path, headers, status, body)
            assert "Authorization: Bearer" in body["error"]
            assert got["WWW-Authenticate"].startswith("Bearer")


async def test_another_tenants_resources_answer_like_missing_ones(api: Api) -> None:
    status, created, headers = await api.call(
        "POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme", "Globex"]}
    )
    assert status == 201, created
    assert created["brands"] == ["Acme", "Globex"]
    assert headers["Location"] == "/v1/projects/shop"
    job = await seed_completed_job(api.stack, "shop")

    # alice sees her project and its job; bob sees neither, nor does he learn they exist
    status, listed, _ = await api.call("GET", "/v1/projects", api.alice)
    assert [p["name"] for p in listed["items"]] == ["shop"]
    status, listed, _ = await api.call("GET", "/v1/projects", api.bob)
    assert listed["items"] == []
    for path in (
        "/v1/projects/shop",
        "/v1/projects/shop/jobs",
        f"/v1/jobs/{job.job_id}",
        f"/v1/jobs/{job.job_id}/summary",
        f"/v1/jobs/{job.job_id}/detections",
        f"/v1/jobs/{job.job_id}/report",
    ):
        assert (await api.call("GET", path, api.alice))[0] == 200, path
        theirs = await api.call("GET", path, api.bob)
        missing = await api.call(
            "GET", path.replace("shop", "nope").replace(job.job_id, "job-x"), api.bob
        )
        assert theirs[0] == missing[0] == 404, path
        assert theirs[1]["error"] == missing[1]["error"], path  # the same words either way
    status, _, _ = await api.call(
        "POST", "/v1/projects/shop/uploads", api.bob, json={"file_name": "a.mp4"}
    )
    assert status == 404
    # an admin key sees every project, including those the CLI made (no owner)
    await ProjectStore(
        api.stack.clients.dynamodb, api.stack.names.table("projects")
    ).create_project(Project(project="cli-made", brands=["Initech"]))
    status, listed, _ = await api.call("GET", "/v1/projects", api.admin)
    assert sorted(p["name"] for p in listed["items"]) == ["cli-made", "shop"]
    assert (await api.call("GET", "/v1/projects/cli-made", api.alice))[0] == 404
    # names are global: bob cannot take alice's
    status, body, _ = await api.call(
        "POST", "/v1/projects", api.bob, json={"name": "shop", "brands": ["X"]}
    )
    assert status == 409
    assert "taken" in body["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "Bad Name", "brands": ["A"]}, "name"),
        ({"name": "ok", "brands": []}, "brands"),
        ({"name": "ok", "brands": ["Acme", "acme"]}, "twice"),
        ({"name": "ok", "brands": ["A"], "colour": "red"}, "colour"),
        ({"name": "ok", "brands": ["A"], "labeling": "ground-truth"}, "labeling"),
        ({"brands": ["A"]}, "name"),
        (["not", "an", "object"], "body"),
    ],
)
async def test_bad_project_bodies_get_400_naming_the_field(api: Api, body: Any, words: str) -> None:
    status, answer, _ = await api.call("POST", "/v1/projects", api.alice, json=body)
    assert status == 400, answer
    assert words in answer["error"]


async def test_bodies_that_are_not_json_or_too_large(api: Api) -> None:
    status, answer, _ = await api.call(
        "POST",
        "/v1/projects",
        api.alice,
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert (status, answer["error"]) == (400, "the body is not valid JSON")
    status, answer, _ = await api.call(
        "POST", "/v1/projects", api.alice, data=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert "JSON" in answer["error"]
    huge = json.dumps({"name": "big", "brands": ["A" * 100] * 1000}).encode()
    status, answer, _ = await api.call(
        "POST", "/v1/projects", api.alice, data=huge, headers={"Content-Type": "application/json"}
    )
    assert status == 413, answer
    status, answer, _ = await api.call("GET", "/v1/nowhere", api.alice)
    assert status == 404
    assert "error" in answer


async def give_model(stack: Stack, project: str) -> None:
    await ProjectStore(stack.clients.dynamodb, stack.names.table("projects")).update(
        project, "project", {"current_model_arn": f"arn:aws:rekognition:{project}/v1"}
    )


async def test_an_analysis_upload_needs_a_trained_model(api: Api) -> None:
    await api.call("POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme"]})
    status, answer, _ = await api.call(
        "POST", "/v1/projects/shop/uploads", api.alice, json={"file_name": "promo.mp4"}
    )
    # refused at ticket time, in the words `brandlens analyze` uses (services/cli analyze.py),
    # instead of a job the inferer fails a minute after the upload
    assert status == 409, answer
    assert answer["error"] == (
        "project 'shop' has no trained model yet: upload training media and annotations "
        "first (see `brandlens train`)"
    )
    for purpose, name in (("training", "clip.mp4"), ("annotations", "clip.json")):
        status, ticket, _ = await api.call(
            "POST", "/v1/projects/shop/uploads", api.alice,
            json={"file_name": name, "purpose": purpose},
        )  # fmt: skip
        assert status == 201, (purpose, ticket)
    await give_model(api.stack, "shop")
    status, ticket, _ = await api.call(
        "POST", "/v1/projects/shop/uploads", api.alice, json={"file_name": "promo.mp4"}
    )
    assert status == 201, ticket
    assert ticket["key"] == "analysis/shop/promo.mp4"


async def test_an_upload_ticket_becomes_a_job(api: Api, tmp_path: Any) -> None:
    await api.call("POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme"]})
    await give_model(api.stack, "shop")
    for bad in ("../x.mp4", "a/b.mp4", "", "bell\x07.mp4"):
        status, answer, _ = await api.call(
            "POST", "/v1/projects/shop/uploads", api.alice, json={"file_name": bad}
        )
        assert status == 400, (bad, answer)
    status, ticket, _ = await api.call(
        "POST", "/v1/projects/shop/uploads", api.alice, json={"file_name": "promo clip.mp4"}
    )
    assert status == 201, ticket
    assert ticket["key"] == "analysis/shop/promo clip.mp4"
    video = make_mp4(tmp_path / "clip.mp4", seconds=1.0)
    ingest = await start_ingest(api.stack)
    try:
        form = aiohttp.FormData()
        for name, value in ticket["fields"].items():
            form.add_field(name, value)
        form.add_field("file", video, filename="promo clip.mp4", content_type="video/mp4")
        async with api.http.post(ticket["url"], data=form) as response:
            assert response.status in (200, 201, 204), await response.text()

        async def accepted() -> Any:
            status, page, _ = await api.call("GET", ticket["jobs_url"], api.alice)
            assert status == 200
            return page["items"] or None

        (job,) = await eventually(accepted, timeout=30, message="the uploaded file's job")
        assert job["media"]["key"] == "analysis/shop/promo clip.mp4"
        assert job["status"] in ("ACCEPTED", "FRAMING"), job
        assert job["purpose"] == "analysis"
        status, detail, _ = await api.call("GET", f"/v1/jobs/{job['job_id']}", api.alice)
        assert status == 200
        assert detail["progress"]["stage"] == job["status"].lower()
        assert detail["links"]["summary"] is None  # not analysed yet
        status, answer, _ = await api.call("GET", f"/v1/jobs/{job['job_id']}/summary", api.alice)
        assert status == 409
        assert "results exist once it completes" in answer["error"]
    finally:
        await ingest.stop()


async def test_results_of_a_job_that_will_never_have_any_answer_410_with_the_reason(
    api: Api,
) -> None:
    await api.call("POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme"]})
    store = JobStore(api.stack.clients.dynamodb, api.stack.names.table("jobs"))
    never = {
        "job-train": (JobStatus.LABELING, Purpose.TRAINING, None, "is a training job"),
        "job-trained": (JobStatus.COMPLETED, Purpose.TRAINING, None, "is a training job"),
        "job-rejected": (JobStatus.REJECTED, Purpose.ANALYSIS, "not a video", "not a video"),
        "job-failed": (JobStatus.FAILED, Purpose.ANALYSIS, "the model did not run", "not run"),
    }
    for job_id, (job_status, purpose, reason, _) in never.items():
        await store.create(
            Job(job_id=job_id, project="shop", purpose=purpose, status=job_status, reason=reason)
        )
    await store.create(
        Job(job_id="job-busy", project="shop", purpose=Purpose.ANALYSIS, status=JobStatus.FRAMED)
    )
    for part in ("summary", "detections", "report"):
        for job_id, (job_status, _, _, words) in never.items():
            status, answer, _ = await api.call("GET", f"/v1/jobs/{job_id}/{part}", api.alice)
            # a client polling for results knows to stop, and why
            assert status == 410, (job_id, part, answer)
            assert words in answer["error"], (job_id, part, answer)
            assert job_status.value in answer["error"], (job_id, part, answer)
        status, answer, _ = await api.call("GET", f"/v1/jobs/job-busy/{part}", api.alice)
        assert status == 409, (part, answer)  # it may still complete: keep polling
        assert "results exist once it completes" in answer["error"]
    status, document, _ = await api.call("GET", "/v1/openapi.json", api.alice)
    for path in ("summary", "detections", "report"):
        responses = document["paths"][f"/v1/jobs/{{job_id}}/{path}"]["get"]["responses"]
        assert "never have results" in responses["410"]["description"], path
        assert "409" in responses, path


async def test_jobs_page_through_newest_first_with_filters(api: Api) -> None:
    await api.call("POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme"]})
    store = JobStore(api.stack.clients.dynamodb, api.stack.names.table("jobs"))
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.ACCEPTED] * 3 + [JobStatus.FAILED]
    made = []
    for i, job_status in enumerate(statuses):
        job = Job(
            job_id=f"job-{i:02d}", project="shop", status=job_status,
            media={"key": f"analysis/shop/{i}.mp4"},
        )  # fmt: skip
        job.created_at = job.created_at.replace(microsecond=i)  # distinct; 0 included
        made.append(await store.create(job))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        status, page, _ = await api.call("GET", "/v1/projects/shop/jobs", api.alice, params=query)
        assert status == 200, page
        assert len(page["items"]) <= 3
        seen += [j["job_id"] for j in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [j.job_id for j in reversed(made)]  # each once, newest first
    assert pages == 4
    status, page, _ = await api.call(
        "GET", "/v1/projects/shop/jobs", api.alice, params={"status": "FAILED", "limit": "2"}
    )
    assert [j["job_id"] for j in page["items"]] == ["job-09", "job-07"]
    status, page2, _ = await api.call(
        "GET", "/v1/projects/shop/jobs", api.alice,
        params={"status": "FAILED", "limit": "2", "cursor": page["next_cursor"]},
    )  # fmt: skip
    assert [j["job_id"] for j in page2["items"]] == ["job-04", "job-01"]
    status, page, _ = await api.call(
        "GET", "/v1/projects/shop/jobs", api.alice, params={"key": "analysis/shop/5.mp4"}
    )
    assert [j["job_id"] for j in page["items"]] == ["job-05"]
    for params, words in (
        ({"cursor": "garbage!"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"colour": "red"}, "colour"),
    ):
        status, answer, _ = await api.call(
            "GET", "/v1/projects/shop/jobs", api.alice, params=params
        )
        assert status == 400, (params, answer)
        assert words in answer["error"], (params, answer)


async def test_an_analysis_percent_only_goes_forward_from_framing_to_completed(api: Api) -> None:
    """Framing once showed 100 % (frames sampled), then analysis 0/2 batches showed 0 %."""
    await api.call("POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme"]})
    jobs = JobStore(api.stack.clients.dynamodb, api.stack.names.table("jobs"))
    framing = {"frame_count": 8, "frames_planned": 8, "batch_count": 2, "batch_size_frames": 4}
    stages: list[tuple[JobStatus, dict[str, int], dict[str, Any], int]] = [
        (JobStatus.ACCEPTED, {}, {}, 0),
        (JobStatus.FRAMING, {"frames_done": 2, "frames_planned": 8}, {}, 0),
        (JobStatus.FRAMING, {"frames_done": 8, "frames_planned": 8}, {}, 1),
        (JobStatus.FRAMED, {"frames_done": 8, "frames_planned": 8}, framing, 0),
        (JobStatus.ANALYZING, {"frames_done": 8, "frames_planned": 8}, framing, 1),
        (JobStatus.ANALYZING, {"frames_done": 8, "frames_planned": 8}, framing, 2),
        (JobStatus.COMPLETED, {"frames_done": 8, "frames_planned": 8}, framing, 2),
    ]
    seen = []
    for n, (status, progress, framed, batches) in enumerate(stages):
        job_id = f"job-pct{n}"
        await jobs.create(
            Job(
                job_id=job_id, project="shop", purpose=Purpose.ANALYSIS, status=status,
                media={"kind": "video"}, progress=progress, framing=framed, batches_done=batches,
            )
        )  # fmt: skip
        code, detail, _ = await api.call("GET", f"/v1/jobs/{job_id}", api.alice)
        assert code == 200, detail
        seen.append(detail["progress"]["percent"])
    assert seen[1:] == [12.5, 50.0, 50.0, 75.0, 100.0, 100.0]
    assert seen[0] in (None, 0.0)


async def test_results_detections_and_report(api: Api) -> None:
    await api.call("POST", "/v1/projects", api.alice, json={"name": "shop", "brands": ["Acme"]})
    job = await seed_completed_job(api.stack, "shop", frames=25, batch_size=4)
    status, detail, _ = await api.call("GET", f"/v1/jobs/{job.job_id}", api.alice)
    assert detail["progress"]["percent"] == 100.0
    assert detail["links"]["report"] == f"/v1/jobs/{job.job_id}/report"
    status, summary, _ = await api.call("GET", detail["links"]["summary"], api.alice)
    assert status == 200
    assert summary["schema_version"] == 1
    assert summary["frame_count"] == 25
    assert summary["brands"]["acme"]["frames"] == 13  # every other frame
    indexes: list[int] = []
    cursor = None
    while True:
        params = {"limit": "10"} | ({"cursor": cursor} if cursor else {})
        status, page, _ = await api.call(
            "GET", detail["links"]["detections"], api.alice, params=params
        )
        assert status == 200, page
        indexes += [f["index"] for f in page["items"]]
        for frame in page["items"]:
            names = [x["name"] for x in frame["labels"]]
            assert names == (["acme"] if frame["index"] % 2 == 0 else [])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert indexes == list(range(25))  # every frame once, in order, across 7 batches
    status, html, headers = await api.call("GET", detail["links"]["report"], api.alice)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert b"acme" in html
    assert b"<svg" in html


ACME = {
    "name": "acme",
    "confidence": 91.0,
    "box": {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2},
}


async def seed_completed_job(
    stack: Stack, project: str, *, frames: int = 6, batch_size: int = 3
) -> Job:
    """A completed analysis job's row and files as the inferer writes them."""
    s3 = stack.clients.s3
    bucket = stack.names.artifacts_bucket
    job_id = f"job-{project}-done"
    all_frames = [
        {
            "index": i,
            "key": f"frames/{job_id}/{i:06d}.jpg",
            "timestamp_ms": i * 500.0,
            "labels": [
                {
                    "name": "acme",
                    "confidence": 91.0,
                    "box": {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2},
                }
            ]
            if i % 2 == 0
            else [],
        }
        for i in range(frames)
    ]
    batches = [all_frames[i : i + batch_size] for i in range(0, frames, batch_size)]
    for n, batch in enumerate(batches):
        body = {"batch_id": FrameBatch.make_id(job_id, n), "model": "m", "frames": batch}
        await s3.put_object(
            Bucket=bucket, Key=f"detections/{job_id}/{n:06d}.json", Body=json.dumps(body)
        )
    summary = aggregate(
        all_frames, job_id=job_id, project=project, model="m", media_kind="video",
        settings=AggregationSettings(),
    )  # fmt: skip
    await s3.put_object(
        Bucket=bucket, Key=f"results/{job_id}/summary.json", Body=summary.model_dump_json()
    )
    await s3.put_object(
        Bucket=bucket, Key=f"results/{job_id}/report.html", Body=render(summary, {}).encode()
    )
    job = Job(
        job_id=job_id,
        project=project,
        status=JobStatus.COMPLETED,
        framing={"batch_count": len(batches), "frame_count": frames},
        summary_key=f"results/{job_id}/summary.json",
        report_key=f"results/{job_id}/report.html",
    )
    jobs = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    await jobs.create(job)
    for n in range(len(batches)):  # counted on the row, as the inferer does
        assert await jobs.count_batch(job_id, FrameBatch.make_id(job_id, n))
    return await jobs.get(job_id)
