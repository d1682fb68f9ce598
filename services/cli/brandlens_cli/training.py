"""CLI commands for training: ``train`` and ``models``. Registered by :mod:`brandlens_cli.main`."""

from __future__ import annotations

import asyncio
import sys
import uuid
import webbrowser
from datetime import datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from brandlens_cli import main as m
from brandlens_cli.target import Target
from brandlens_core.aws import AwsClients
from brandlens_core.events import utc_now
from brandlens_core.jobs import JobNotFoundError, JobStore, ResultsState, results_state
from brandlens_core.projects import ConflictError, ProjectNotFoundError, ProjectStore
from brandlens_trainer.handler import Command
from brandlens_trainer.models import ModelStatus, ModelStore, ModelVersion, retrain_version_name


@click.command("train")
@click.argument("project", callback=m.validate_project)
@click.option("--dataset", "dataset_id", default=None, help="A dataset id (default: the latest).")
@click.option(
    "--again",
    is_flag=True,
    help="Train another version even if the dataset has one (promotion rules unchanged).",
)
@m.target_options
def train_command(
    project: str, dataset_id: str | None, again: bool, use_aws: bool, state_dir: Path
) -> None:
    """Train a model version of PROJECT on its latest (or the given) dataset."""
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_train(target, project, dataset_id, again)))


async def _train(target: Target, project: str, dataset_id: str | None, again: bool = False) -> int:
    async with AwsClients(target.aws, services=("dynamodb", "sqs")) as clients:
        store = ProjectStore(clients.dynamodb, target.names.table("projects"))
        datasets = sorted(
            await store.query(project, "dataset#"), key=lambda r: str(r.get("created_at"))
        )
        if not datasets:
            raise click.ClickException(
                f"{project} has no dataset yet: label training media first "
                f"(brandlens batches {project})"
            )
        chosen = datasets[-1]
        if dataset_id is not None:
            matching = [d for d in datasets if d.get("dataset_id") == dataset_id]
            if not matching:
                known = ", ".join(str(d.get("dataset_id")) for d in datasets)
                raise click.ClickException(f"no dataset {dataset_id} in {project} (known: {known})")
            chosen = matching[0]
        existing = await ModelStore(store).get(project, str(chosen["dataset_id"]))
        if existing is not None and not again:
            m.console.print(
                f"dataset {chosen['dataset_id']} already has version {existing.version} "
                f"({existing.status.value}); see brandlens models {project}, or train it "
                f"again with: brandlens train {project} --dataset {chosen['dataset_id']} --again"
            )
            return 0
        request_id = uuid.uuid4().hex
        again = existing is not None  # nothing to train again: the dataset's own version
        command = Command(
            command="train",
            project=project,
            dataset_id=str(chosen["dataset_id"]),
            request_id=request_id,
            again=again,
        )
        url = (await clients.sqs.get_queue_url(QueueName=target.names.queue("trainer")))["QueueUrl"]
        await clients.sqs.send_message(QueueUrl=url, MessageBody=command.model_dump_json())
    if again:
        version = retrain_version_name(str(chosen["dataset_id"]), request_id)
        m.console.print(
            f"asked the trainer to train {escape(project)} on {chosen['dataset_id']} again "
            f"(version {version}; it becomes current by the usual rules); "
            f"follow it with: brandlens models {project}"
        )
        return 0
    m.console.print(
        f"asked the trainer to train {escape(project)} on {chosen['dataset_id']}; "
        f"follow it with: brandlens models {project}"
    )
    return 0


@click.command("models")
@click.argument("project", callback=m.validate_project)
@click.option("--pin", "pin", default=None, help="Make this version current and keep it so.")
@click.option("--unpin", is_flag=True, help="Let newly trained versions become current again.")
@m.target_options
def models_command(
    project: str, pin: str | None, unpin: bool, use_aws: bool, state_dir: Path
) -> None:
    """Model versions of PROJECT: status, F1, which one is current."""
    if pin and unpin:
        raise click.BadParameter("--pin and --unpin exclude each other")
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_models(target, project, pin, unpin)))


async def _models(target: Target, project: str, pin: str | None, unpin: bool) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        store = ProjectStore(clients.dynamodb, target.names.table("projects"))
        models = ModelStore(store)
        try:
            settings = await store.get_project(project)
        except ProjectNotFoundError:
            raise click.ClickException(f"no project {project}") from None
        if pin or unpin:
            fields: dict[str, object] = {"current_model_pinned": bool(pin)}
            if pin:
                chosen = await models.get(project, pin)
                if chosen is None or chosen.version_arn is None or chosen.status.value != "TRAINED":
                    raise click.ClickException(f"{pin} is not a trained version of {project}")
                fields["current_model_arn"] = chosen.version_arn
            try:
                await store.update(project, "project", fields)
            except ConflictError:
                raise click.ClickException(f"project {project} changed; try again") from None
            settings = await store.get_project(project)
        versions = await models.all(project)
    table = Table(title=f"model versions of {escape(project)}", title_justify="left")
    for column in ("version", "status", "F1", "labels (P/R/F1)", "current", "note", "created"):
        table.add_column(column, overflow="fold")
    for v in versions:
        labels = ", ".join(
            f"{escape(name)} {_f(x.precision)}/{_f(x.recall)}/{_f(x.f1_score)}"
            for name, x in v.labels.items()
        )
        current = v.version_arn is not None and v.version_arn == settings.current_model_arn
        table.add_row(
            v.version,
            v.status.value,
            _f(v.f1_score),
            labels or "-",
            ("pinned" if settings.current_model_pinned else "yes") if current else "",
            escape(model_note(v, current=current, pinned=settings.current_model_pinned)),
            m._when(v.created_at),
        )
    m.console.print(table if versions else f"no model versions in {escape(project)}")
    return 0


def model_note(v: ModelVersion, *, current: bool, pinned: bool, now: datetime | None = None) -> str:
    """What holds for a version today, in words: the trainer's promotion note is what held
    when it was trained ("no current version" on what is now the current one); for a
    version in training, its progress, predicted end and the trainer's next look."""
    if v.reason:
        return v.reason
    if v.status is ModelStatus.TRAINING:
        return training_note(v, now or utc_now())
    since = f", {m._when(v.promoted_at)}" if v.promoted_at else ""
    if v.promoted is None:
        note = ""
    elif current and pinned:
        note = "pinned as the current version"
    elif current and v.promoted:
        note = (
            f"current since it was trained{since} (no version was current then)"
            if v.promotion_note == "no current version"
            else f"current since it was trained{since} ({v.promotion_note})"
        )
    elif current:
        note = f"current (not promoted when trained: {v.promotion_note})"
    elif v.promoted:
        note = f"promoted when trained{since}; another version is current now"
    else:
        note = f"not promoted ({v.promotion_note})"
    return "; ".join(part for part in (note, v.warning or "") if part)


def training_note(v: ModelVersion, now: datetime) -> str:
    """``training 42 %, expected to end 12:01:40 (in 95 s); next look 12:01:43``."""
    parts = [
        "training" if v.progress is None else f"training {v.progress * 100:.0f} %",
    ]
    if v.expected_end_at is not None:
        left = (v.expected_end_at - now).total_seconds()
        parts[0] += (
            f", expected to end {m._when(v.expected_end_at)} (in {left:.0f} s)"
            if left >= 0
            else f", past its predicted end ({m._when(v.expected_end_at)})"
        )
    elif v.next_look_at is not None and v.progress is None:
        parts[0] += " (the service reports no progress)"
    if v.next_look_at is not None:
        parts.append(f"next look {m._when(v.next_look_at)}")
    return "; ".join(parts)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@click.command("report")
@click.argument("job_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Where to write the HTML (default: STATE_DIR/reports/JOB_ID.html).",
)
@click.option("--open", "open_it", is_flag=True, help="Open it in the default browser.")
@m.target_options
def report_command(
    job_id: str, out: Path | None, open_it: bool, use_aws: bool, state_dir: Path
) -> None:
    """Fetch the HTML report of an analysed job (self-contained: opens offline)."""
    target = m._target(use_aws, state_dir)
    path = out or state_dir / "reports" / f"{job_id}.html"
    sys.exit(m._run(_report(target, job_id, path, open_it)))


async def _report(target: Target, job_id: str, path: Path, open_it: bool) -> int:
    async with AwsClients(target.aws, services=("dynamodb", "s3")) as clients:
        try:
            job = await JobStore(clients.dynamodb, target.jobs_table).get(job_id)
        except JobNotFoundError:
            raise click.ClickException(f"no job {job_id}") from None
        if not job.report_key:
            state, why = results_state(job)
            if state is ResultsState.PENDING:  # may still complete: exit 2, try again later
                m.err_console.print(f"{escape(why)}; try again later (brandlens job {job_id})")
                return 2
            raise click.ClickException(why or f"job {job_id} has no report")
        response = await clients.s3.get_object(
            Bucket=target.names.artifacts_bucket, Key=job.report_key
        )
        async with response["Body"] as body:
            html = await body.read()
    written = await asyncio.to_thread(_write, path, html)
    m.console.print(f"report of {job_id}: {written}")
    if open_it:
        webbrowser.open(written.as_uri())
    return 0


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.resolve()


COMMANDS: list[click.Command] = [train_command, models_command, report_command]


for _command in COMMANDS:  # registered here, so importing this module first works too
    m.command_group().add_command(_command)
