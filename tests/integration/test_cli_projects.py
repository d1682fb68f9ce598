"""`brandlens project/projects/annotations/label/batches/train/models` against the stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandlens_core.projects import ProjectStore
from brandlens_trainer.models import ModelStatus, ModelStore, ModelVersion
from tests.integration.test_cli_submit import brandlens, write_local_state
from tests.support import Stack, receive_all

pytestmark = pytest.mark.integration


async def test_project_commands(stack: Stack, tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_local_state(state, stack)
    at = ("--state-dir", str(state))

    code, out = await brandlens("project", "create", "acme", "--labeling", "label-studio", *at)
    assert code == 2
    assert "lists no brands" in out
    code, out = await brandlens(
        "project", "create", "acme", "--brand", "Acme", "--brand", "Globex",
        "--labeling", "label-studio", *at,
    )  # fmt: skip
    assert code == 0, out
    assert "2 brand(s), labelled by label-studio" in out
    code, out = await brandlens("project", "create", "acme", "--brand", "X", *at)
    assert code == 1
    assert "exists; add --update" in out
    code, out = await brandlens("project", "create", "acme", "--brand", "Acme", "--update", *at)
    assert code == 0, out
    code, out = await brandlens("projects", *at)
    assert "acme" in out
    assert "import" in out  # the update replaced the settings

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, out = await brandlens("annotations", "acme", str(notes), *at)
    assert code == 2
    assert ".json" in out
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    code, out = await brandlens("annotations", "acme", str(coco), "--name", "clip.json", *at)
    assert code == 0, out
    head = await stack.clients.s3.head_object(
        Bucket=stack.names.media_bucket, Key="training/acme/annotations/clip.json"
    )
    assert head["ContentLength"] == coco.stat().st_size

    code, out = await brandlens("label", "acme", *at)
    assert code == 0, out
    messages = await receive_all(stack, stack.queue_urls["labeler"])
    # (the upload's Object Created event is routed to the labeler too)
    (command,) = [m for m in messages if "command" in m]
    assert command["command"] == "open"
    assert command["project"] == "acme"

    code, out = await brandlens("batches", "acme", *at)
    assert code == 0
    assert "no labelling batches" in out


async def test_train_and_models_commands(stack: Stack, tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_local_state(state, stack)
    at = ("--state-dir", str(state))
    code, out = await brandlens("project", "create", "shop", "--brand", "acme", *at)
    assert code == 0, out
    code, out = await brandlens("train", "shop", *at)
    assert code == 1
    assert "no dataset yet" in out

    projects = ProjectStore(stack.clients.dynamodb, stack.names.table("projects"))
    for n in (1, 2):
        await projects.put_new(
            "shop",
            f"dataset#ds-{n}",
            {
                "project": "shop", "dataset_id": f"ds-{n}", "batch_ids": [], "job_ids": [],
                "labels": ["acme"], "train_manifest_uri": f"s3://b/{n}/train.manifest",
                "test_manifest_uri": f"s3://b/{n}/test.manifest", "statistics_uri": "s3://b/s",
                "train_image_count": 8, "test_image_count": 2, "box_count": 12,
                "created_at": f"2026-11-22T0{n}:00:00+00:00",
            },
        )  # fmt: skip
    code, out = await brandlens("train", "shop", *at)
    assert code == 0, out
    (command,) = await receive_all(stack, stack.queue_urls["trainer"])
    assert (command["command"], command["dataset_id"]) == ("train", "ds-2")  # the latest

    models = ModelStore(projects)
    for n, f1 in ((1, 0.8), (2, 0.7)):
        await models.create(
            ModelVersion(
                project="shop", version=f"ds-{n}", dataset_id=f"ds-{n}",
                status=ModelStatus.TRAINED, version_arn=f"arn:aws:rekognition:v{n}", f1_score=f1,
            )
        )  # fmt: skip
    await projects.update("shop", "project", {"current_model_arn": "arn:aws:rekognition:v1"})
    code, out = await brandlens("train", "shop", "--dataset", "ds-1", *at)
    assert code == 0
    assert "already has version ds-1" in out
    code, out = await brandlens("models", "shop", "--pin", "ds-2", *at)
    assert code == 0, out
    project = await projects.get_project("shop")
    assert (project.current_model_arn, project.current_model_pinned) == (
        "arn:aws:rekognition:v2",
        True,
    )
    assert "pinned" in out
    code, out = await brandlens("models", "shop", "--pin", "ds-9", *at)
    assert code == 1
    assert "not a trained version" in out
    code, out = await brandlens("models", "shop", "--unpin", *at)
    assert code == 0
    assert not (await projects.get_project("shop")).current_model_pinned


async def test_report_command_fetches_the_html(stack: Stack, tmp_path: Path) -> None:
    from brandlens_core.events import Purpose
    from brandlens_core.jobs import Job, JobStatus, JobStore

    state = tmp_path / "state"
    write_local_state(state, stack)
    at = ("--state-dir", str(state))
    jobs = JobStore(stack.clients.dynamodb, stack.names.table("jobs"))
    await jobs.create(
        Job(job_id="job-r", project="acme", purpose=Purpose.ANALYSIS, status=JobStatus.FRAMED)
    )
    code, out = await brandlens("report", "job-r", *at)
    assert code == 2  # it may still complete: try again later
    assert "job-r is FRAMED; results exist once it completes" in out
    # jobs that will never have a report: exit 1 with the reason, so a script stops asking
    for job_id, purpose, job_status, reason, words in (
        ("job-t", Purpose.TRAINING, JobStatus.LABELING, None, "job-t is a training job"),
        ("job-f", Purpose.ANALYSIS, JobStatus.FAILED, "the model did not run within 900 s",
         "job-f is FAILED: the model did not run within 900 s; it will have no results"),
    ):  # fmt: skip
        await jobs.create(
            Job(job_id=job_id, project="acme", purpose=purpose, status=job_status, reason=reason)
        )
        code, out = await brandlens("report", job_id, *at)
        assert code == 1, out
        assert words in out, out
    html = b"<!doctype html><html><body>report</body></html>"
    await stack.clients.s3.put_object(
        Bucket=stack.names.artifacts_bucket, Key="results/job-r/report.html", Body=html
    )
    await jobs.transition(
        "job-r", JobStatus.COMPLETED, fields={"report_key": "results/job-r/report.html"}
    )
    out_path = tmp_path / "r.html"
    code, out = await brandlens("report", "job-r", "--out", str(out_path), *at)
    assert code == 0, out
    assert out_path.read_bytes() == html
    code, out = await brandlens("report", "job-nope", *at)
    assert code == 1
    assert "no job job-nope" in out
