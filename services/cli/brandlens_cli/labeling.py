"""CLI commands for projects and labelling: ``project``, ``projects``, ``annotations``,
``label`` and ``batches``. Registered on the main group by :mod:`brandlens_cli.main`."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from brandlens_cli import main as m
from brandlens_cli.target import Target
from brandlens_core.aws import AwsClients
from brandlens_core.projects import (
    BatchMode,
    ConflictError,
    GroundTruthOptions,
    LabelingBackend,
    Project,
    ProjectStore,
)
from brandlens_labeler.batches import BatchStore
from brandlens_labeler.handler import Command
from brandlens_labeler.imports import EXTENSIONS, annotations_prefix


def _projects(clients: AwsClients, target: Target) -> ProjectStore:
    return ProjectStore(clients.dynamodb, target.names.table("projects"))


@click.group("project")
def project_group() -> None:
    """Create and show projects (brands and how they are labelled)."""


@project_group.command("create")
@click.argument("name", callback=m.validate_project)
@click.option("--brand", "brands", multiple=True, help="A brand to label (repeat for several).")
@click.option(
    "--labeling",
    type=click.Choice([b.value for b in LabelingBackend]),
    default=LabelingBackend.IMPORT.value,
    show_default=True,
    help="Who labels: imported annotation files, Label Studio, or Ground Truth.",
)
@click.option(
    "--batch-mode",
    type=click.Choice([b.value for b in BatchMode]),
    default=BatchMode.PER_JOB.value,
    show_default=True,
    help="per-job: each training upload is labelled on its own; manual: `brandlens label`.",
)
@click.option("--workteam-arn", default=None, help="Ground Truth: private workteam ARN.")
@click.option("--role-arn", default=None, help="Ground Truth: role the labelling job assumes.")
@click.option("--task-type", type=click.Choice(["image", "video"]), default="image")
@click.option("--update", is_flag=True, help="Replace the settings of an existing project.")
@m.target_options
def project_create(
    name: str,
    brands: tuple[str, ...],
    labeling: str,
    batch_mode: str,
    workteam_arn: str | None,
    role_arn: str | None,
    task_type: str,
    update: bool,
    use_aws: bool,
    state_dir: Path,
) -> None:
    """Create project NAME with its brands."""
    try:
        ground_truth = (
            GroundTruthOptions(workteam_arn=workteam_arn, role_arn=role_arn, task_type=task_type)
            if workteam_arn or role_arn
            else None
        )
        project = Project(
            project=name,
            brands=list(brands),
            labeling=LabelingBackend(labeling),
            batch_mode=BatchMode(batch_mode),
            ground_truth=ground_truth,
        )
        project.check_backend()
    except (ValidationError, ValueError) as exc:
        raise click.BadParameter(_short(exc)) from None
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_project_create(target, project, update)))


MANAGED_FIELDS = (
    "label_studio_project_id",
    "current_model_arn",
    "current_model_pinned",
    "rekognition_project_arn",
    "owner",
    "created_at",
)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


async def _project_create(target: Target, project: Project, update: bool) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        store = _projects(clients, target)
        if update:
            existing = await store.find_project(project.project)
            if existing is not None:
                # what the services and the API recorded stays; only the settings change
                project = project.model_copy(
                    update={name: getattr(existing, name) for name in MANAGED_FIELDS}
                )
            await store.save_project(project)
        else:
            try:
                await store.create_project(project)
            except ConflictError:
                raise click.ClickException(
                    f"project {project.project!r} exists; add --update to replace its settings"
                ) from None
    m.console.print(
        f"project [bold]{escape(project.project)}[/]: {len(project.brands)} brand(s), "
        f"labelled by {project.labeling.value} ({project.batch_mode.value} batches)"
    )
    return 0


@click.command("projects")
@m.target_options
def projects_command(use_aws: bool, state_dir: Path) -> None:
    """List projects."""
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_list_projects(target)))


async def _list_projects(target: Target) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        projects = await _projects(clients, target).list_projects()
    table = Table(title=f"projects in {escape(target.description)}", title_justify="left")
    for column in ("project", "brands", "labelling", "batches", "Label Studio"):
        table.add_column(column, overflow="fold")
    for p in projects:
        table.add_row(
            escape(p.project),
            escape(", ".join(p.brands) or "-"),
            p.labeling.value,
            p.batch_mode.value,
            str(p.label_studio_project_id or "-"),
        )
    m.console.print(
        table if projects else "no projects; create one with `brandlens project create`"
    )
    return 0


@click.command("annotations")
@click.argument("project", callback=m.validate_project)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--name",
    default=None,
    help="File name under annotations/ (default: FILE's). Name it after a training video "
    "(clip.json for clip.mp4) to label that video's frames.",
)
@m.target_options
def annotations_command(
    project: str, file: Path, name: str | None, use_aws: bool, state_dir: Path
) -> None:
    """Upload an annotations FILE (COCO .json, Ground Truth .manifest/.jsonl, YOLO .zip)."""
    name = name or file.name
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSIONS or "/" in name or name.startswith("."):
        raise click.BadParameter(
            f"{name!r}: use a plain file name ending in {', '.join(sorted(EXTENSIONS))}",
            param_hint="FILE/--name",
        )
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_annotations(target, project, file, name)))


async def _annotations(target: Target, project: str, file: Path, name: str) -> int:
    key = annotations_prefix(project) + name
    async with AwsClients(target.aws, services=("s3",)) as clients:
        await m.upload_with_progress(clients.s3, target.names.media_bucket, key, file)
    m.console.print(f"uploaded s3://{target.names.media_bucket}/{escape(key)}")
    m.console.print(f"follow the labelling with: brandlens batches {project}")
    return 0


@click.command("label")
@click.argument("project", callback=m.validate_project)
@click.option("--job", "job_ids", multiple=True, help="Only these framed training jobs.")
@m.target_options
def label_command(project: str, job_ids: tuple[str, ...], use_aws: bool, state_dir: Path) -> None:
    """Gather PROJECT's framed training jobs into one labelling batch."""
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_label(target, project, list(job_ids))))


async def _label(target: Target, project: str, job_ids: list[str]) -> int:
    command = Command(command="open", project=project, job_ids=job_ids, request_id=uuid.uuid4().hex)
    async with AwsClients(target.aws, services=("sqs",)) as clients:
        url = (await clients.sqs.get_queue_url(QueueName=target.names.queue("labeler")))["QueueUrl"]
        await clients.sqs.send_message(QueueUrl=url, MessageBody=command.model_dump_json())
    what = f"{len(job_ids)} job(s)" if job_ids else "every framed training job"
    m.console.print(f"asked the labeler to open a batch of {what} in {escape(project)}")
    m.console.print(f"follow it with: brandlens batches {project}")
    return 0


@click.command("batches")
@click.argument("project", callback=m.validate_project)
@m.target_options
def batches_command(project: str, use_aws: bool, state_dir: Path) -> None:
    """Show PROJECT's labelling batches and datasets."""
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_batches(target, project)))


async def _batches(target: Target, project: str) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        store = BatchStore(_projects(clients, target))
        batches = await store.all(project)
        datasets = await store.list_datasets(project)
    table = Table(title=f"labelling batches of {escape(project)}", title_justify="left")
    for column in ("batch", "backend", "status", "labelled", "boxes", "external id", "reason"):
        table.add_column(column, overflow="fold")
    for b in sorted(batches, key=lambda b: b.created_at):
        done = b.labelled_images if b.status.value == "COMPLETE" else b.tasks_done
        table.add_row(
            b.batch_id,
            b.backend.value,
            b.status.value,
            f"{done}/{b.task_count}",
            str(b.box_count),
            escape(b.external_id or "-"),
            escape(b.reason or ""),
        )
    m.console.print(table if batches else f"no labelling batches in {escape(project)}")
    if datasets:
        ds = Table(title="datasets", title_justify="left")
        for column in ("dataset", "labels", "train", "test", "boxes", "created"):
            ds.add_column(column, overflow="fold")
        for d in datasets:
            row: list[Any] = [
                d.dataset_id,
                escape(", ".join(d.labels)),
                str(d.train_image_count),
                str(d.test_image_count),
                str(d.box_count),
                m._when(d.created_at),
            ]
            ds.add_row(*row)
        m.console.print(ds)
    return 0


COMMANDS: list[click.Command] = [
    project_group,
    projects_command,
    annotations_command,
    label_command,
    batches_command,
]


for _command in COMMANDS:  # registered here, so importing this module first works too
    m.command_group().add_command(_command)
