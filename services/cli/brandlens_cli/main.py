"""The ``brandlens`` command line: a local stack, uploads, and jobs.

``up`` runs the embedded local stack in the foreground; ``submit``, ``jobs``
and ``job`` talk to it (or, with ``--aws``, to the stack the environment
describes, see :mod:`brandlens_cli.target`); ``demo`` runs a stack of its own,
pushes sample media through it and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.status import Status
from rich.table import Table

from brandlens_cli.embedded import EmbeddedStack, port_is_free, read_local_state
from brandlens_cli.persist import size_of
from brandlens_cli.target import (
    NoTargetError,
    Target,
    is_settled,
    resolve_target,
)
from brandlens_core.aws import AwsClients, Client, error_code
from brandlens_core.dynamo import from_item
from brandlens_core.envelopes import S3ObjectCreated
from brandlens_core.events import Purpose, utc_now
from brandlens_core.jobs import Job, JobNotFoundError, JobStatus, JobStore
from brandlens_core.settings import STACK_NAME_RE
from brandlens_core.stack import define
from brandlens_core.stack import deploy as deploy_stack
from brandlens_ingest.handler import job_id_for
from brandlens_ingest.keys import PROJECT_RE, BadKeyError, parse_key, printable

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # multipart part size; files larger than this are uploaded in parts
POLL_INTERVAL_SECONDS = 0.5
DEFAULT_STATE_DIR = Path(".brandlens")
FAILED_STATUSES = frozenset({JobStatus.REJECTED, JobStatus.FAILED})
STATUS_STYLES = {
    JobStatus.ACCEPTED: "green",
    JobStatus.COMPLETED: "bold green",
    JobStatus.REJECTED: "red",
    JobStatus.FAILED: "bold red",
}

# Piped output (not a terminal, no COLUMNS) gets room for the tables instead of rich's 80.
_PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")


# -- the job id of an upload ---------------------------------------------------


def job_id_for_upload(bucket: str, key: str, version_id: str | None) -> str | None:
    """The id ingest gives the job of this object version, or None if S3 gave no version.

    Ingest derives the id from the ``Object Created`` event (:func:`job_id_for`);
    this builds the event S3 sends for the version and asks ingest's function,
    so the two can never disagree. Without a version id (an unversioned
    bucket) ingest uses the event's sequencer, which only S3 knows.
    """
    if version_id in (None, "", "null"):
        return None
    event = S3ObjectCreated.model_validate(
        {
            "envelope": {
                "id": "brandlens-cli",
                "detail-type": "Object Created",
                "source": "aws.s3",
                "detail": {},
            },
            "detail": {
                "bucket": {"name": bucket},
                "object": {"key": key, "version-id": version_id},
            },
        }
    )
    return job_id_for(event)


# -- validation ----------------------------------------------------------------


def validate_project(ctx: click.Context | None, param: Any, value: str) -> str:
    if not PROJECT_RE.match(value):
        raise click.BadParameter(
            f"{value!r} is not a valid project name: use 1-63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return value


def _validate_optional_project(
    ctx: click.Context | None, param: Any, value: str | None
) -> str | None:
    return None if value is None else validate_project(ctx, param, value)


def validate_stack_name(ctx: click.Context | None, param: Any, value: str) -> str:
    if not STACK_NAME_RE.match(value):
        raise click.BadParameter(
            f"{value!r} is not a valid stack name: use 3-32 lowercase letters, digits and "
            "'-', starting with a letter"
        )
    return value


def media_key(purpose: str, project: str, file_name: str) -> str:
    """``<purpose>/<project>/<file name>``; click.BadParameter if ingest would refuse it."""
    key = f"{purpose}/{project}/{file_name}"
    try:
        parse_key(key)
    except BadKeyError as exc:
        raise click.BadParameter(
            f"cannot upload {file_name!r}: {exc.reason}", param_hint="FILE"
        ) from None
    return key


# -- uploading -----------------------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    key: str
    size: int
    version_id: str | None
    etag: str | None


def _read_part(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)


async def upload_file(
    s3: Client,
    bucket: str,
    key: str,
    path: Path,
    *,
    part_size: int = PART_SIZE,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> Uploaded:
    """Upload ``path``: one PutObject up to ``part_size``, a multipart upload above.

    A multipart upload that fails or is cancelled (Ctrl-C) is aborted, so no
    invisible parts are left in the bucket.
    """
    size = (await asyncio.to_thread(path.stat)).st_size
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if size <= part_size:
        body = await asyncio.to_thread(path.read_bytes)
        response = await s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        on_progress(len(body))
    else:
        created = await s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        upload_id = created["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            offset = 0
            while offset < size:
                chunk = await asyncio.to_thread(_read_part, path, offset, part_size)
                if not chunk:
                    raise OSError(f"{path} shrank to {offset} bytes while it was being uploaded")
                number = len(parts) + 1
                part = await s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"ETag": part["ETag"], "PartNumber": number})
                offset += len(chunk)
                on_progress(len(chunk))
            response = await s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
    etag = response.get("ETag")
    return Uploaded(
        bucket=bucket,
        key=key,
        size=size,
        version_id=response.get("VersionId"),
        etag=str(etag).strip('"') if etag else None,
    )


async def upload_with_progress(s3: Client, bucket: str, key: str, path: Path) -> Uploaded:
    size = (await asyncio.to_thread(path.stat)).st_size
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"upload {escape(path.name)}", total=size)
        return await upload_file(
            s3, bucket, key, path, on_progress=lambda n: progress.advance(task, n)
        )


# -- following jobs ------------------------------------------------------------


@dataclass
class Tracked:
    """A job being followed: known by id, or (without a version id) by its key."""

    label: str
    project: str
    key: str
    job_id: str | None
    since: datetime = field(default_factory=utc_now)
    job: Job | None = None
    settled: bool = False

    @property
    def status_text(self) -> str:
        return self.job.status.value if self.job else "waiting for ingest"

    @property
    def exit_code(self) -> int:
        """0 accepted/completed (settled), 1 rejected/failed, 2 not settled in time."""
        if not self.settled or self.job is None:
            return 2
        return 1 if self.job.status in FAILED_STATUSES else 0


async def refresh(store: JobStore, tracked: Tracked) -> None:
    if tracked.job_id is not None:
        with contextlib.suppress(JobNotFoundError):
            tracked.job = await store.get(tracked.job_id)
        return
    # No version id: find the newest job of this key created since the upload.
    shown_key = printable(tracked.key)
    for job in await store.list(project=tracked.project, limit=50):
        if job.media.get("key") == shown_key and job.created_at >= tracked.since - timedelta(
            seconds=5
        ):
            tracked.job, tracked.job_id = job, job.job_id
            return


async def follow(
    store: JobStore,
    tracked: Sequence[Tracked],
    running: frozenset[str] | None,
    timeout_seconds: float,
    on_update: Callable[[], None] = lambda: None,
) -> None:
    """Poll every job until each has settled (see :func:`is_settled`) or time runs out."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        for t in tracked:
            if not t.settled:
                await refresh(store, t)
                t.settled = is_settled(t.job, running)
        on_update()
        remaining = deadline - time.monotonic()
        if all(t.settled for t in tracked) or remaining <= 0:
            return
        await asyncio.sleep(min(POLL_INTERVAL_SECONDS, remaining))


async def follow_with_spinner(
    store: JobStore,
    tracked: Sequence[Tracked],
    running: frozenset[str] | None,
    timeout_seconds: float,
) -> None:
    def text() -> str:
        return "  ".join(
            f"{escape(t.label)}: {_styled_text(t.job.status if t.job else None, t.status_text)}"
            for t in tracked
        )

    with console.status(text()) as status:
        await follow(store, tracked, running, timeout_seconds, lambda: status.update(text()))


def _styled_text(status: JobStatus | None, text: str) -> str:
    style = STATUS_STYLES.get(status) if status else None
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _styled(status: JobStatus) -> str:
    return _styled_text(status, status.value)


# -- running coroutines --------------------------------------------------------


async def _with_signals(main: Awaitable[T], on_signal: Callable[[], None] | None = None) -> T:
    """Run ``main``; SIGINT/SIGTERM cancel it once (so its cleanup runs), later ones wait."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    signals = (signal.SIGINT, signal.SIGTERM)
    received: list[int] = []

    def handler(sig: int) -> None:
        received.append(sig)
        if len(received) == 1:
            if on_signal is not None:
                on_signal()
            task.cancel()
        else:
            err_console.print("[yellow]still stopping; please wait[/]")

    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        loop.add_signal_handler(sig, handler, sig)
    try:
        return await task
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            # asyncio leaves the default handler; the command's own (brandlens_cli) comes back
            if callable(previous[sig]) and previous[sig] is not signal.default_int_handler:
                signal.signal(sig, previous[sig])


def _run(main: Coroutine[Any, Any, int], *, interrupted_code: int = 130) -> int:
    """Run a command's coroutine; turn AWS and target errors into clean messages."""
    try:
        return asyncio.run(_with_signals(main))
    except (asyncio.CancelledError, KeyboardInterrupt):
        if interrupted_code:
            err_console.print("[yellow]interrupted[/]")
        return interrupted_code
    except NoTargetError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        message = _aws_error_message(exc)
        if message is None:
            raise
        raise click.ClickException(message) from None


def _aws_error_message(exc: Exception) -> str | None:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in ("ResourceNotFoundException", "NoSuchBucket"):
            return f"{exc} (is the stack deployed, and is BRANDLENS_STACK_NAME right?)"
        return str(exc)
    if isinstance(exc, BotoCoreError):
        return str(exc)
    return None


def _quiet_logging() -> None:
    """The services log to their own files; in the CLI, libraries only warn, on stderr."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _target(use_aws: bool, state_dir: Path) -> Target:
    try:
        return resolve_target(use_aws=use_aws, state_dir=state_dir)
    except NoTargetError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def _spinner(text: str) -> Iterator[Status]:
    with console.status(text) as status:
        yield status


# -- the commands --------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def state_dir_option(f: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_STATE_DIR,
        show_default=True,
        help="Where the local stack keeps its state (S3 objects, tables, queues, models, "
        "keys: kept across restarts) and logs.",
    )(f)


def target_options(f: F) -> F:
    f = click.option(
        "--aws",
        "use_aws",
        is_flag=True,
        help="Talk to the stack the environment describes (BRANDLENS_AWS_*, "
        "BRANDLENS_STACK_NAME, AWS credentials) instead of the local stack.",
    )(f)
    return state_dir_option(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brandlens")
def cli() -> None:
    """brandlens: custom brand detection in images and video."""


def command_group() -> click.Group:
    """The top-level group, for modules that add commands to it."""
    group: click.Group = cli
    return group


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4510,
    show_default=True,
    help="Port of the local AWS endpoint (moto server); 0 picks a free one.",
)
@click.option("--stack-name", default="brandlens", show_default=True, callback=validate_stack_name)
@click.option(
    "--label-studio",
    is_flag=True,
    help="Also run Label Studio (built by `make labelstudio`) and point the labeler at it.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Start empty: move the saved state (objects, tables, queues, models, keys, Label "
    "Studio data) aside to STATE_DIR/previous/<time>/ first. Logs and reports stay.",
)
@state_dir_option
def up(port: int, stack_name: str, label_studio: bool, fresh: bool, state_dir: Path) -> None:
    """Run the local stack in the foreground until Ctrl-C.

    Everything it holds is kept in STATE_DIR and comes back at the next `up`: a clean stop
    (Ctrl-C, SIGTERM) saves everything; a crash loses nothing that was acknowledged
    (a power cut: at most the last second).
    """
    running = read_local_state(state_dir)
    if running is not None:
        raise click.ClickException(
            f"a local stack is already running: {running.get('stack_name')!r} at "
            f"{running.get('endpoint_url')} (pid {running.get('pid')}, "
            f"state {state_dir / 'local.json'}); stop it with Ctrl-C in its terminal"
        )
    if fresh:
        moved = move_state_aside(state_dir)
        if moved is not None:
            console.print(f"the saved state was moved to {moved}; starting empty")
    if port and not port_is_free(port):
        raise click.ClickException(
            f"port {port} is in use on 127.0.0.1; pick another with --port (0 = any free port)"
        )
    _quiet_logging()
    stack = EmbeddedStack(
        stack_name=stack_name, port=port, state_dir=state_dir, label_studio=label_studio
    )
    sys.exit(_run(_up(stack), interrupted_code=0))


#: What `up --fresh` moves aside: everything the stack restores (logs and reports stay).
SAVED_STATE = ("aws", "model-server", "label-studio", "api-key")


def move_state_aside(state_dir: Path) -> Path | None:
    """Move the saved state to STATE_DIR/previous/<UTC time>/; None if there was none."""
    present = [state_dir / name for name in SAVED_STATE if (state_dir / name).exists()]
    if not present:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = state_dir / "previous" / stamp
    target.mkdir(parents=True, exist_ok=False)
    for path in present:
        path.rename(target / path.name)
    return target


def _describe_state(stack: EmbeddedStack) -> str:
    if not stack.persist:
        return f"{stack.state_dir} (throw-away: nothing is kept after the stop)"
    restored = stack.restored
    size = size_of(stack.state_dir) - size_of(stack.state_dir / "logs")
    kept = (
        f"restored {restored.get('objects', 0)} objects, {restored.get('items', 0)} items, "
        f"{restored.get('messages', 0)} messages in {restored.get('seconds', 0):.1f}s"
        if restored.get("objects") or restored.get("items") or restored.get("messages")
        else "empty (first start)"
    )
    skipped = [
        f"{len(restored[k])} {k.removeprefix('skipped_')} not in stack {stack.stack_name!r}"
        for k in ("skipped_buckets", "skipped_tables", "skipped_queues")
        if restored.get(k)
    ]
    note = f"; kept but not loaded: {', '.join(skipped)}" if skipped else ""
    return (
        f"{stack.state_dir.resolve()} ({_human_bytes(size)}; {kept}{note}; kept across "
        "restarts, `up --fresh` starts empty)"
    )


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


async def _up(stack: EmbeddedStack) -> int:
    try:
        with _spinner("starting the local stack…"):
            try:
                await stack.start()
                await stack.wait_for_api()
            except RuntimeError as exc:
                err_console.print(f"[red]error:[/] could not start the local stack: {exc}")
                return 1
        _print_stack(stack)
        await asyncio.Event().wait()  # until SIGINT/SIGTERM cancels us
        return 0
    finally:
        console.print("stopping the local stack…")
        await stack.stop()
        console.print("stopped")


def _print_stack(stack: EmbeddedStack) -> None:
    names = stack.names
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("endpoint", stack.endpoint_url)
    grid.add_row("stack", stack.stack_name)
    grid.add_row(
        "buckets",
        f"{names.media_bucket} (media: <analysis|training>/<project>/<file>), "
        f"{names.artifacts_bucket}",
    )
    grid.add_row("jobs table", names.table("jobs"))
    grid.add_row("services", ", ".join(stack.processes) or "none")
    if stack.api_url is not None:
        grid.add_row("REST API", f"{stack.api_url}/v1 (document: /v1/openapi.json)")
        grid.add_row("API key", f"{stack.api_key} (admin; also in {stack.api_key_file})")
    if stack.label_studio_server is not None:
        ls = stack.label_studio_server
        grid.add_row(
            "Label Studio",
            f"{ls.url} (user {ls.username}, password in "
            f"{stack.state_dir / 'label-studio' / 'credentials.json'})",
        )
    grid.add_row("logs", str(stack.state_dir / "logs"))
    grid.add_row("state", _describe_state(stack))
    console.print("[bold green]brandlens local stack is up[/]")
    console.print(grid)
    console.print(
        "Try: [bold]brandlens submit photo.jpg --project acme --purpose analysis[/]   "
        "Press Ctrl-C to stop."
    )


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--project", required=True, callback=validate_project, help="Project name.")
@click.option(
    "--purpose",
    required=True,
    type=click.Choice([p.value for p in Purpose]),
    help="analysis: find brands in it; training: label it to train a model.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the job.")
@click.option(
    "--timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=600,
    show_default=True,
    help="How long to follow the job.",
)
@target_options
def submit(
    file: Path,
    project: str,
    purpose: str,
    wait: bool,
    timeout_seconds: float,
    use_aws: bool,
    state_dir: Path,
) -> None:
    """Upload FILE as media and follow the job it becomes.

    Exit code: 0 accepted or completed, 1 rejected or failed, 2 still pending at the timeout.
    """
    key = media_key(purpose, project, file.name)
    target = _target(use_aws, state_dir)
    sys.exit(_run(_submit(target, file, project, key, wait, timeout_seconds)))


async def _submit(
    target: Target, path: Path, project: str, key: str, wait: bool, timeout_seconds: float
) -> int:
    bucket = target.names.media_bucket
    console.print(f"uploading to s3://{bucket}/{escape(key)} ({escape(target.description)})")
    async with AwsClients(target.aws, services=("s3", "dynamodb")) as clients:
        since = utc_now()
        uploaded = await upload_with_progress(clients.s3, bucket, key, path)
        tracked = Tracked(
            label=path.name,
            project=project,
            key=key,
            job_id=job_id_for_upload(bucket, key, uploaded.version_id),
            since=since,
        )
        if not wait:
            if tracked.job_id is None:
                console.print("uploaded; the bucket is not versioned, so the job id is not known")
            else:
                console.print(f"job {tracked.job_id}")
            return 0
        store = JobStore(clients.dynamodb, target.jobs_table)
        await follow_with_spinner(store, [tracked], target.services, timeout_seconds)
    _print_outcome(tracked, timeout_seconds)
    return tracked.exit_code


def _print_outcome(tracked: Tracked, timeout_seconds: float) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("job", tracked.job_id or "(not created yet)")
    if tracked.job is not None:
        grid.add_row("status", _styled(tracked.job.status))
        grid.add_row("reason", escape(tracked.job.reason or "-"))
    else:
        grid.add_row("status", "no job yet")
    console.print(grid)
    if tracked.job is not None and tracked.job.status is JobStatus.LABELING:
        progress = tracked.job.progress
        note = progress.get("note") or "waiting for labels"
        console.print(
            f"[cyan]{escape(str(note))}[/]; follow it with "
            f"`brandlens batches {escape(tracked.job.project or '')}`"
        )
    if not tracked.settled:
        hint = f"; check later with `brandlens job {tracked.job_id}`" if tracked.job_id else ""
        err_console.print(
            f"[yellow]timed out after {timeout_seconds:g}s waiting for the job to settle{hint}[/]"
        )


@cli.command("deploy")
def deploy_command() -> None:
    """Create the stack's resources where the environment points (e.g. LocalStack).

    Reads BRANDLENS_AWS_ENDPOINT_URL (or the per-API endpoints), BRANDLENS_STACK_NAME
    and the usual AWS credentials, and creates every bucket, queue, DLQ, rule and
    table of the stack definition that does not exist yet. On AWS, use Terraform.
    """
    target = _target(True, DEFAULT_STATE_DIR)
    sys.exit(_run(_deploy(target)))


async def _deploy(target: Target) -> int:
    with _spinner(f"deploying to {escape(target.description)}"):
        async with AwsClients(target.aws) as clients:
            queues = await deploy_stack(clients, define(target.names))
    console.print(f"deployed {escape(target.description)}: {len(queues)} queues")
    return 0


@cli.command("jobs")
@click.option(
    "--project", default=None, callback=_validate_optional_project, help="Only this project."
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@target_options
def jobs_command(project: str | None, limit: int, use_aws: bool, state_dir: Path) -> None:
    """List jobs, newest first."""
    target = _target(use_aws, state_dir)
    sys.exit(_run(_jobs(target, project, limit)))


async def _jobs(target: Target, project: str | None, limit: int) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        jobs = await JobStore(clients.dynamodb, target.jobs_table).list(
            project=project, limit=limit
        )
        total = (
            await _count_jobs(clients.dynamodb, target.jobs_table, project)
            if len(jobs) >= limit
            else len(jobs)
        )
    table = Table(title=f"jobs in {escape(target.description)}", title_justify="left")
    table.add_column("job id", no_wrap=True, min_width=28)
    table.add_column("project")
    table.add_column("purpose", min_width=8)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("reason", overflow="fold")
    table.add_column("media key", overflow="fold")
    table.add_column("created", no_wrap=True)
    for job in jobs:
        table.add_row(
            job.job_id,
            escape(job.project or "-"),
            job.purpose.value if job.purpose else "-",
            _styled(job.status),
            escape(job.reason or ""),
            escape(str(job.media.get("key", ""))),
            _when(job.created_at),
        )
    console.print(table if jobs else "no jobs")
    if total > len(jobs):
        more = total - len(jobs)
        where = f" --project {project}" if project else ""
        console.print(
            f"[yellow]{more} more job{'s' if more != 1 else ''}[/] (newest {len(jobs)} of "
            f"{total} shown); see them with `brandlens jobs{where} --limit {total}`"
        )
    return 0


async def _count_jobs(db: Client, table: str, project: str | None) -> int:
    """How many jobs there are (in ``project``, else in all): a COUNT query or scan."""
    kwargs: dict[str, Any] = {"TableName": table, "Select": "COUNT"}
    if project is not None:
        kwargs |= {
            "IndexName": "by-project",
            "KeyConditionExpression": "project = :p",
            "ExpressionAttributeValues": {":p": {"S": project}},
        }
    count = 0
    operation = "query" if project is not None else "scan"
    async for page in db.get_paginator(operation).paginate(**kwargs):
        count += int(page.get("Count", 0))
    return count


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@cli.command("job")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the raw job row as JSON.")
@target_options
def job_command(job_id: str, as_json: bool, use_aws: bool, state_dir: Path) -> None:
    """Show one job."""
    target = _target(use_aws, state_dir)
    sys.exit(_run(_job(target, job_id, as_json)))


async def _job(target: Target, job_id: str, as_json: bool) -> int:
    async with AwsClients(target.aws, services=("dynamodb", "s3")) as clients:
        got = await clients.dynamodb.get_item(
            TableName=target.jobs_table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        summary = await _job_summary(clients.s3, target, got.get("Item"))
    item = got.get("Item")
    if item is None:
        err_console.print(f"[red]error:[/] no job {escape(job_id)} in {escape(target.description)}")
        return 1
    row = from_item(item)
    if as_json:
        click.echo(json.dumps(row, indent=2, sort_keys=True, default=_json_default))
        return 0
    job = Job.model_validate(row)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("job", job.job_id)
    grid.add_row("status", _styled(job.status))
    grid.add_row("reason", escape(job.reason or "-"))
    grid.add_row("project", escape(job.project or "-"))
    grid.add_row("purpose", job.purpose.value if job.purpose else "-")
    grid.add_row("created", _when(job.created_at))
    grid.add_row("updated", f"{_when(job.updated_at)} (revision {job.revision})")
    for name, value in sorted(job.media.items()):
        grid.add_row(f"media.{escape(name)}", escape(str(value)))
    for name, value in sorted(job.progress.items()):
        grid.add_row(f"progress.{escape(name)}", escape(str(value)))
    for name, value in sorted(job.framing.items()):
        grid.add_row(f"framing.{escape(name)}", escape(str(value)))
    if job.published:
        grid.add_row("published", ", ".join(sorted(job.published)))
    console.print(grid)
    _print_job_brands(job, summary)
    return 0


async def _job_summary(s3: Client, target: Target, item: Any) -> dict[str, Any] | None:
    """The results summary of an analysed job row (None without one, or if it is gone)."""
    key = from_item(item).get("summary_key") if item else None
    if not key:
        return None
    try:
        response = await s3.get_object(Bucket=target.names.artifacts_bucket, Key=str(key))
    except ClientError:
        return None
    async with response["Body"] as body:
        summary: dict[str, Any] = json.loads(await body.read())
    return summary


def _print_job_brands(job: Job, summary: dict[str, Any] | None) -> None:
    """The per-brand table of an analysed job (what `analyze` printed), and its report."""
    if summary is None:
        if job.summary_key:
            console.print(f"[yellow]its summary ({escape(job.summary_key)}) is missing[/]")
        return
    if summary.get("brands"):
        console.print(analyze.brand_table(summary))
    else:
        console.print("no brand was found")
    if job.report_key:
        console.print(f"report: `brandlens report {job.job_id}`")


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


# -- the demo ------------------------------------------------------------------


# Project, labelling and training commands live in their own modules, which add
# themselves to `cli` when imported.
from brandlens_cli import analyze, demo, labeling, training  # noqa: E402, F401

if __name__ == "__main__":
    # Run as a script, this file is `__main__`; the command modules add their commands to
    # the group of the imported `brandlens_cli.main`, so run that one.
    from brandlens_cli.main import cli as registered

    registered()
