"""``brandlens analyze`` (through the REST API) and ``brandlens apikey`` (keys of that API).

``analyze`` is what an API user's program does: ask for an upload ticket, POST the
file to S3, follow the job it becomes, print the per-brand table and save the
report. The API's address and key come from ``--api-url``/``--api-key`` (or
``BRANDLENS_API_URL``/``BRANDLENS_API_KEY``), else from the running local stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
import time
import webbrowser
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from brandlens_cli import main as m
from brandlens_cli.embedded import read_local_state
from brandlens_cli.target import Target, no_stack_message
from brandlens_core.apikeys import ApiKeyError, ApiKeyStore, describe
from brandlens_core.aws import AwsClients

TERMINAL = frozenset({"COMPLETED", "FAILED", "REJECTED"})


class ApiError(click.ClickException):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ApiClient:
    """A thin client of the REST API: JSON in and out, errors as the API words them."""

    url: str
    key: str
    http: aiohttp.ClientSession

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            async with self.http.request(
                method, self.url.rstrip("/") + path, headers=headers, **kwargs
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    raise ApiError(response.status, _error_text(response.status, body))
                if response.content_type == "application/json":
                    return json.loads(body)
                return body
        except aiohttp.ClientConnectionError as exc:
            raise click.ClickException(
                f"cannot reach the brandlens API at {self.url}: {exc}; is the stack up "
                "(`brandlens up`), or is --api-url right?"
            ) from None

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("POST", path, json=dict(body))

    async def upload(self, ticket: Mapping[str, Any], path: Path) -> None:
        """POST the file to S3 as the ticket says (the form fields first, the file last)."""
        form = aiohttp.FormData()
        for name, value in ticket["fields"].items():
            form.add_field(name, value)
        with path.open("rb") as f:
            form.add_field("file", f, filename=path.name)
            async with self.http.post(ticket["url"], data=form) as response:
                if response.status >= 300:
                    text = (await response.text())[:500]
                    raise click.ClickException(
                        f"S3 refused the upload of {path.name} ({response.status}): {text}"
                    )


def _error_text(status: int, body: bytes) -> str:
    try:
        message = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        message = body[:300].decode(errors="replace")
    return f"the API answered {status}: {message}"


def api_settings(api_url: str | None, api_key: str | None, state_dir: Path) -> tuple[str, str]:
    """The API's address and key: given, or the running local stack's."""
    if api_url and api_key:
        return api_url, api_key
    state = read_local_state(state_dir)
    if state is None or not state.get("api_url"):
        raise click.ClickException(
            f"no API given and {no_stack_message(state_dir)}; or pass --api-url and "
            "--api-key (or set BRANDLENS_API_URL and BRANDLENS_API_KEY)"
        )
    url = api_url or str(state["api_url"])
    if api_key:
        return url, api_key
    key_file = state.get("api_key_file")
    if not key_file:
        raise click.ClickException("the local stack has no API key; pass --api-key")
    return url, Path(key_file).read_text().strip()


def api_options(f: m.F) -> m.F:
    f = click.option(
        "--api-key",
        envvar="BRANDLENS_API_KEY",
        default=None,
        help="API key (default: the local stack's; env BRANDLENS_API_KEY).",
    )(f)
    f = click.option(
        "--api-url",
        envvar="BRANDLENS_API_URL",
        default=None,
        help="The REST API, like https://brandlens.example.com (default: the local stack's; "
        "env BRANDLENS_API_URL).",
    )(f)
    return m.state_dir_option(f)


# -- analyze ----------------------------------------------------------------------------------


@dataclass
class Analysis:
    job: dict[str, Any]
    summary: dict[str, Any] | None
    report_path: Path | None


#: What a folder given to ``analyze`` contributes: the files ingest takes (by their suffix).
MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".mp4", ".mov"})
#: How many files ``analyze`` uploads at once by default.
PARALLEL_UPLOADS = 4


@dataclass
class FileAnalysis:
    """One file of ``brandlens analyze``, from its upload to its results."""

    path: Path
    stage: str = "waiting to upload"
    jobs_url: str | None = None  # set once the upload started: where its job appears
    since: datetime | None = None
    job: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    report_path: Path | None = None
    error: str | None = None  # why this file has no job or no results (upload refused…)

    @property
    def job_id(self) -> str | None:
        return None if self.job is None else str(self.job["job_id"])

    @property
    def status(self) -> str:
        if self.job is not None:
            return str(self.job["status"])
        return "NOT UPLOADED" if self.jobs_url is None else "NO JOB YET"

    @property
    def ended(self) -> bool:
        """Nothing more will happen to it: refused before a job, or its job ended."""
        return self.error is not None or (self.job is not None and self.job["status"] in TERMINAL)

    @property
    def running(self) -> bool:
        """Its job (or the upload that becomes one) goes on without this command."""
        return not self.ended and self.jobs_url is not None

    def as_analysis(self) -> Analysis:
        assert self.job is not None
        return Analysis(self.job, self.summary, self.report_path)


def media_files(paths: Sequence[Path]) -> tuple[list[Path], int]:
    """The files to analyse: each file given, and the media files directly in each folder
    given (by suffix, sorted); and how many other files the folders held.

    click.BadParameter when there is none, or when two share a name (a file's name is its
    S3 key, so the second upload would replace the first).
    """
    files: list[Path] = []
    skipped = 0
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        for child in sorted(path.iterdir()):
            if not child.is_file() or child.name.startswith("."):
                continue
            if child.suffix.lower() in MEDIA_SUFFIXES:
                files.append(child)
            else:
                skipped += 1
    if not files:
        raise click.BadParameter(
            f"no media files ({', '.join(sorted(MEDIA_SUFFIXES))}) in "
            + ", ".join(str(p) for p in paths),
            param_hint="FILES",
        )
    seen: dict[str, Path] = {}
    for f in files:
        if f.name in seen and seen[f.name].resolve() != f.resolve():
            raise click.BadParameter(
                f"{seen[f.name]} and {f} have the same name; the file name is the upload's key, "
                "so analyse them in separate runs or rename one",
                param_hint="FILES",
            )
        seen[f.name] = f
    unique = list({f.resolve(): f for f in files}.values())
    return unique, skipped


async def check_project(api: ApiClient, project: str) -> None:
    """click.ClickException unless ``project`` exists for this key and has a model."""
    try:
        found = await api.get(f"/v1/projects/{project}")
    except ApiError as exc:
        if exc.status == 404:
            raise click.ClickException(
                f"project {project!r} not found (or not visible to this key); create it with "
                "`brandlens project create` or POST /v1/projects"
            ) from None
        raise
    if not found.get("current_model"):
        raise click.ClickException(
            f"project {project!r} has no trained model yet: upload training media and "
            "annotations first (see `brandlens train`)"
        )


async def upload_for_analysis(api: ApiClient, project: str, item: FileAnalysis) -> None:
    """Ask for a ticket and POST the file; ``item.jobs_url`` is set as the upload starts."""
    path = item.path
    ticket = await api.post(
        f"/v1/projects/{project}/uploads", {"file_name": path.name, "purpose": "analysis"}
    )
    size = (await asyncio.to_thread(path.stat)).st_size
    if size > ticket["max_bytes"]:
        raise click.ClickException(
            f"{path.name} is {size} bytes; API uploads take at most {ticket['max_bytes']} "
            "(larger files: `brandlens submit`, which uploads in parts)"
        )
    item.since = datetime.now().astimezone() - timedelta(seconds=5)
    item.jobs_url = ticket["jobs_url"]
    item.stage = f"uploading ({size / 1e6:.1f} MB)"
    await api.upload(ticket, path)
    item.stage = "waiting for ingest"


async def find_job(api: ApiClient, item: FileAnalysis) -> dict[str, Any] | None:
    """The job the upload became, once ingest has created it."""
    assert item.jobs_url is not None
    assert item.since is not None
    page = await api.get(item.jobs_url)
    fresh = [j for j in page["items"] if datetime.fromisoformat(j["created_at"]) >= item.since]
    return fresh[0] if fresh else None


def progress_text(job: Mapping[str, Any]) -> str:
    """The job's stage and how far it is, e.g. ``framed (1/2 batches)``."""
    p = job["progress"]
    detail = str(p["stage"])
    if p.get("batch_count"):
        detail += f" ({p['batches_done']}/{p['batch_count']} batches)"
    elif p.get("frames_planned"):
        detail += f" ({p.get('frames_done') or 0}/{p['frames_planned']} frames)"
    return detail


async def follow_upload(
    api: ApiClient, item: FileAnalysis, deadline: float, poll_seconds: float
) -> None:
    """Poll the upload's job until it ends or the deadline passes (``item.job`` meanwhile)."""
    while time.monotonic() < deadline:
        if item.job is None:
            item.job = await find_job(api, item)
        else:
            item.job = await api.get(f"/v1/jobs/{item.job['job_id']}")
        if item.job is not None:
            item.stage = progress_text(item.job)
            if item.job["status"] in TERMINAL:
                return
        await asyncio.sleep(max(0.0, min(poll_seconds, deadline - time.monotonic())))


async def fetch_results(api: ApiClient, item: FileAnalysis, reports_dir: Path) -> None:
    """The summary of a completed job, and its report saved as ``<reports_dir>/<job>.html``."""
    job = item.job
    if job is None or job["status"] != "COMPLETED":
        return
    item.summary = await api.get(job["links"]["summary"])
    if job["links"].get("report"):
        html = await api.get(job["links"]["report"])
        report_path = reports_dir / f"{job['job_id']}.html"
        await asyncio.to_thread(_write, report_path, html)
        item.report_path = report_path


async def analyze_one(
    api: ApiClient,
    project: str,
    item: FileAnalysis,
    *,
    uploads: asyncio.Semaphore,
    deadline: float,
    poll_seconds: float,
    reports_dir: Path,
) -> None:
    """Upload (at most ``uploads`` at once), follow, fetch the results of one file.

    What goes wrong with this file (a refused upload, an API error) is its ``error``; the
    other files go on.
    """
    try:
        async with uploads:
            await upload_for_analysis(api, project, item)
        await follow_upload(api, item, deadline, poll_seconds)
        await fetch_results(api, item, reports_dir)
    except click.ClickException as exc:
        item.error = exc.message
        item.stage = "error"


async def analyze_files(
    api: ApiClient,
    items: Sequence[FileAnalysis],
    project: str,
    *,
    timeout_seconds: float,
    reports_dir: Path,
    parallel_uploads: int = PARALLEL_UPLOADS,
) -> None:
    """Analyse every file of ``items`` in ``project``: uploads in parallel (bounded), each
    job followed until it ends or ``timeout_seconds`` have passed; a progress bar per file."""
    deadline = time.monotonic() + timeout_seconds
    # one GET per job and poll: fewer polls a second when many jobs run at once
    poll_seconds = max(m.POLL_INTERVAL_SECONDS, 0.1 * len(items))
    uploads = asyncio.Semaphore(parallel_uploads)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=m.console, transient=True) as progress:
        bars = {id(item): progress.add_task(escape(item.path.name), total=100) for item in items}

        def show() -> None:
            for item in items:
                percent = (item.job or {}).get("progress", {}).get("percent") or 0
                progress.update(
                    bars[id(item)],
                    description=f"{escape(item.path.name)}: {escape(item.stage)}",
                    completed=100 if item.ended else percent,
                )

        async def refresh_bars() -> None:
            while True:
                show()
                await asyncio.sleep(0.2)

        refresher = asyncio.create_task(refresh_bars())
        try:
            one = functools.partial(
                analyze_one, api, project, uploads=uploads, deadline=deadline,
                poll_seconds=poll_seconds, reports_dir=reports_dir,
            )  # fmt: skip
            await asyncio.gather(*(one(item) for item in items))
        finally:
            refresher.cancel()
            show()


async def analyze_file(
    api: ApiClient,
    path: Path,
    project: str,
    *,
    timeout_seconds: float,
    reports_dir: Path,
) -> Analysis:
    """Upload ``path`` for analysis in ``project``, follow the job, fetch its results."""
    await check_project(api, project)
    item = FileAnalysis(path)
    await analyze_files(
        api, [item], project, timeout_seconds=timeout_seconds, reports_dir=reports_dir
    )
    if item.error is not None:
        raise click.ClickException(item.error)
    if item.job is None or item.job["status"] not in TERMINAL:
        what = f"job {item.job_id} is still {item.status}" if item.job else "no job appeared"
        raise click.ClickException(
            f"{path.name}: {what} after {timeout_seconds:.0f}s; follow it with "
            "`brandlens job ID` or raise --timeout-seconds"
        )
    return item.as_analysis()


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def brand_table(summary: Mapping[str, Any], title: str = "brands") -> Table:
    if summary.get("media_kind") == "image":
        return image_brand_table(summary, title)
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("brand", "left"),
        ("screen time", "right"),
        ("qualifying", "right"),
        ("appearances", "right"),
        ("share of voice", "right"),
        ("frames", "right"),
        ("first seen", "left"),
        ("last seen", "left"),
        ("confidence", "right"),
        ("box share", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    brands: Sequence[Mapping[str, Any]] = sorted(
        summary["brands"].values(), key=lambda b: -b["screen_time_ms"]
    )
    for b in brands:
        table.add_row(
            escape(b["brand"]),
            _seconds(b["screen_time_ms"]),
            _seconds(b["qualifying_screen_time_ms"]),
            str(len(b["appearances"])),
            f"{100 * b['share_of_voice']:.1f} %",
            f"{b['frames']}/{summary['frame_count']}",
            b["first_seen_timecode"],
            b["last_seen_timecode"],
            f"{b['mean_confidence']:.0f} / {b['max_confidence']:.0f}",
            f"{100 * b['mean_box_share']:.1f} %",
        )
    return table


def image_brand_table(summary: Mapping[str, Any], title: str = "brands") -> Table:
    """A still has no screen time: detections, and share of voice among them."""
    table = Table(title=title, title_justify="left")
    for name in ("brand", "detections", "share of voice", "confidence", "box share"):
        table.add_column(name, justify="left" if name == "brand" else "right", no_wrap=True)
    brands = sorted(summary["brands"].values(), key=lambda b: -_detections(b))
    for b in brands:
        table.add_row(
            escape(b["brand"]),
            str(_detections(b)),
            f"{100 * b['share_of_voice']:.1f} %",
            f"{b['mean_confidence']:.0f} / {b['max_confidence']:.0f}",
            f"{100 * b['mean_box_share']:.1f} %",
        )
    return table


def _detections(brand: Mapping[str, Any]) -> int:
    return int(brand.get("detections") or brand["frames"])  # summaries before detections


def print_analysis(analysis: Analysis) -> int:
    job = analysis.job
    if analysis.summary is None:
        m.err_console.print(
            f"[red]job {job['job_id']} {job['status']}[/]: {escape(job.get('reason') or '')}"
        )
        return 1
    summary = analysis.summary
    if summary.get("media_kind") == "image":
        found = sum(_detections(b) for b in summary["brands"].values())
        m.console.print(
            f"job {job['job_id']}: image analysed, {found} detection{'s' if found != 1 else ''}"
            f" of {len(summary['brands'])} brand{'s' if len(summary['brands']) != 1 else ''}"
        )
    else:
        m.console.print(
            f"job {job['job_id']}: {summary['frame_count']} frames over "
            f"{summary['duration_ms'] / 1000:.1f} s analysed"
        )
    if summary["brands"]:
        m.console.print(brand_table(summary))
    else:
        m.console.print("no brand was found")
    if analysis.report_path is not None:
        m.console.print(f"report: {analysis.report_path.resolve()}")
    return 0


@dataclass
class BrandTotal:
    """One brand over every completed file of an ``analyze`` run."""

    brand: str
    files: int = 0
    screen_time_ms: float = 0.0  # videos only: a still has no screen time
    appearances: int = 0
    detections: int = 0
    frames: int = 0
    confidence_sum: float = 0.0  # mean confidence x frames, summed: a mean weighted by frames
    max_confidence: float = 0.0

    @property
    def mean_confidence(self) -> float:
        return self.confidence_sum / self.frames if self.frames else 0.0


def brand_totals(summaries: Sequence[Mapping[str, Any]]) -> list[BrandTotal]:
    """Each brand over the summaries, most screen time first."""
    totals: dict[str, BrandTotal] = {}
    for summary in summaries:
        for b in summary["brands"].values():
            t = totals.setdefault(b["brand"], BrandTotal(b["brand"]))
            t.files += 1
            if summary.get("media_kind") != "image":
                t.screen_time_ms += b["screen_time_ms"]
                t.appearances += len(b["appearances"])
            t.detections += _detections(b)
            t.frames += b["frames"]
            t.confidence_sum += b["mean_confidence"] * b["frames"]
            t.max_confidence = max(t.max_confidence, b["max_confidence"])
    return sorted(
        totals.values(), key=lambda t: (-t.screen_time_ms, -t.detections, -t.frames, t.brand)
    )


def combined_table(items: Sequence[FileAnalysis]) -> Table:
    """One table for several files: per file, a row per brand found (or its status and
    why); then per brand, the brand over all the files."""
    table = Table(title=f"brands in {len(items)} files", title_justify="left")
    for name, justify in (
        ("file", "left"),
        ("job", "left"),
        ("status", "left"),
        ("brand", "left"),
        ("screen time", "right"),
        ("appearances", "right"),
        ("detections", "right"),
        ("frames", "right"),
        ("confidence", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "note", overflow="fold")  # type: ignore[arg-type]
    for item in items:
        head = (escape(item.path.name), item.job_id or "-", _status_cell(item.status))
        summary = item.summary
        if summary is None or not summary["brands"]:
            frames = f"0/{summary['frame_count']}" if summary is not None else ""
            table.add_row(*head, "-", "", "", "", frames, "", escape(_note(item)))
            continue
        still = summary.get("media_kind") == "image"
        brands = sorted(
            summary["brands"].values(), key=lambda b: (-b["screen_time_ms"], -_detections(b))
        )
        for i, b in enumerate(brands):
            table.add_row(
                *(head if i == 0 else ("", "", "")),
                escape(b["brand"]),
                "image" if still else _seconds(b["screen_time_ms"]),
                "-" if still else str(len(b["appearances"])),
                str(_detections(b)),
                f"{b['frames']}/{summary['frame_count']}",
                f"{b['mean_confidence']:.0f} / {b['max_confidence']:.0f}",
                "",
            )
    summaries = [i.summary for i in items if i.summary is not None]
    totals = brand_totals(summaries)
    if totals:
        table.add_section()
        frame_count = sum(int(s["frame_count"]) for s in summaries)
        videos = any(s.get("media_kind") != "image" for s in summaries)
        for i, t in enumerate(totals):
            table.add_row(
                f"all {len(summaries)} analysed" if i == 0 else "",
                "",
                "",
                escape(t.brand),
                _seconds(t.screen_time_ms) if videos else "-",
                str(t.appearances) if videos else "-",
                str(t.detections),
                f"{t.frames}/{frame_count}",
                f"{t.mean_confidence:.0f} / {t.max_confidence:.0f}",
                f"in {t.files} of {len(summaries)} files",
            )
    return table


def _status_cell(status: str) -> str:
    style = {"COMPLETED": "green", "FAILED": "bold red", "REJECTED": "red"}.get(status)
    return f"[{style}]{status}[/]" if style else status


def _note(item: FileAnalysis) -> str:
    if item.error is not None:
        return item.error
    if item.job is not None and item.job.get("reason"):
        return str(item.job["reason"])
    if item.summary is not None:
        return "no brand was found"
    if item.job is None and item.jobs_url is None:
        return "not uploaded"
    return "still running"


def exit_code(items: Sequence[FileAnalysis]) -> int:
    """1 if a file failed (refused, rejected, failed), else 2 if a job still runs, else 0."""
    if any(i.error is not None or i.status in ("FAILED", "REJECTED") for i in items):
        return 1
    return 2 if any(not i.ended for i in items) else 0


@dataclass(frozen=True)
class FollowHint:
    """How to follow a job after ``analyze`` stopped: the CLI for the local stack, the REST
    API for another one."""

    project: str
    api_url: str | None = None  # the API given by --api-url; None: the local stack's
    state_dir: Path | None = None  # a non-default --state-dir

    def job(self, job_id: str) -> str:
        if self.api_url is not None:
            return f"GET {self.api_url.rstrip('/')}/v1/jobs/{job_id}"
        return f"brandlens job {job_id}{self._at}"

    def all(self) -> str:
        if self.api_url is not None:
            return f"GET {self.api_url.rstrip('/')}/v1/projects/{self.project}/jobs"
        return f"brandlens jobs --project {self.project}{self._at}"

    @property
    def _at(self) -> str:
        return "" if self.state_dir is None else f" --state-dir {self.state_dir}"


def print_still_running(items: Sequence[FileAnalysis], hint: FollowHint, why: str) -> None:
    """Which jobs go on without this command (ids and status), and how to follow them."""
    running = [i for i in items if i.running]
    others = [i for i in items if not i.running and not i.ended]
    if not running:
        m.err_console.print(f"[yellow]{why}[/]: no job was started")
        return
    jobs = "job keeps" if len(running) == 1 else f"{len(running)} jobs keep"
    m.err_console.print(f"[yellow]{why}[/]: the {jobs} running on the stack:")
    for item in running:
        if item.job_id is None:
            state = "uploaded, its job not created yet (or the upload was cut short)"
            m.err_console.print(f"  {escape(item.path.name)}: {state}")
        else:
            m.err_console.print(
                f"  {escape(item.path.name)}: job {item.job_id} ({escape(item.status)})"
            )
    for item in others:
        m.err_console.print(f"  {escape(item.path.name)}: not uploaded")
    ids = [i.job_id for i in running if i.job_id is not None]
    follow = f"`{escape(hint.job(ids[0]))}`" if len(ids) == 1 else f"`{escape(hint.all())}`"
    m.err_console.print(f"follow it with {follow}")


async def find_missing_jobs(api: ApiClient, items: Sequence[FileAnalysis], seconds: float) -> None:
    """Give ingest ``seconds`` to create the jobs of finished uploads not seen yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        missing = [i for i in items if i.jobs_url is not None and i.job is None]
        if not missing:
            return
        with contextlib.suppress(click.ClickException):
            for item in missing:
                item.job = await find_job(api, item)
        await asyncio.sleep(m.POLL_INTERVAL_SECONDS)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@click.command("analyze")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, readable=True, path_type=Path),
)
@click.option("--project", required=True, callback=m.validate_project, help="Project name.")
@click.option(
    "--timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=1800,
    show_default=True,
    help="How long to follow the jobs (all of them).",
)
@click.option(
    "--parallel-uploads",
    type=click.IntRange(1, 32),
    default=PARALLEL_UPLOADS,
    show_default=True,
    help="How many files are uploaded at once.",
)
@click.option("--open", "open_it", is_flag=True, help="Open the report(s) in a browser.")
@api_options
def analyze_command(
    files: tuple[Path, ...],
    project: str,
    timeout_seconds: float,
    parallel_uploads: int,
    open_it: bool,
    api_url: str | None,
    api_key: str | None,
    state_dir: Path,
) -> None:
    """Analyse FILES with PROJECT's model: upload, follow, print the per-brand table.

    FILES are images and videos, or folders (their .jpg, .jpeg, .png, .mp4 and .mov files).
    Several files are uploaded in parallel and followed together; at the end one table shows
    each file's brands and each brand over all the files. Reports are saved per job in
    STATE_DIR/reports.

    Ctrl-C stops following, not the jobs: it prints their ids and how to follow them.

    Exit code: 0 every job completed, 1 a file was refused or its job failed or was
    rejected, 2 a job was still running at the timeout, 130 interrupted.
    """
    m._quiet_logging()
    paths, skipped = media_files(files)
    url, key = api_settings(api_url, api_key, state_dir)
    hint = FollowHint(
        project=project,
        api_url=url if api_url else None,
        state_dir=None if state_dir == m.DEFAULT_STATE_DIR else state_dir,
    )
    if skipped:
        m.err_console.print(f"skipping {skipped} file(s) that are not images or videos")
    items = [FileAnalysis(path) for path in paths]
    code = m._run(
        _analyze(url, key, items, project, timeout_seconds, parallel_uploads, state_dir, hint)
    )
    if open_it:
        for item in items:
            if item.report_path is not None:
                webbrowser.open(item.report_path.resolve().as_uri())
    sys.exit(code)


async def _analyze(
    url: str,
    key: str,
    items: Sequence[FileAnalysis],
    project: str,
    timeout_seconds: float,
    parallel_uploads: int,
    state_dir: Path,
    hint: FollowHint,
) -> int:
    async with aiohttp.ClientSession() as http:
        api = ApiClient(url, key, http)
        try:
            await check_project(api, project)
            await analyze_files(
                api, items, project, timeout_seconds=timeout_seconds,
                reports_dir=state_dir / "reports", parallel_uploads=parallel_uploads,
            )  # fmt: skip
        except asyncio.CancelledError:
            # Ctrl-C: the jobs go on; say which (finished uploads get a moment to become jobs)
            await find_missing_jobs(api, items, INTERRUPT_LOOKUP_SECONDS)
            print_still_running(items, hint, "interrupted")
            return 130
    print_results(items)
    if any(not i.ended for i in items):
        print_still_running(items, hint, f"timed out after {timeout_seconds:g}s")
    return exit_code(items)


#: After Ctrl-C, how long ``analyze`` waits for the jobs of finished uploads to appear.
INTERRUPT_LOOKUP_SECONDS = 3.0


def print_results(items: Sequence[FileAnalysis]) -> None:
    """One file: its per-brand table; several: the combined table. Then the reports."""
    if len(items) == 1:
        (item,) = items
        if item.error is not None:
            m.err_console.print(f"[red]{escape(item.path.name)}[/]: {escape(item.error)}")
        elif item.job is not None and item.ended:
            print_analysis(item.as_analysis())
        return
    m.console.print(combined_table(items))
    for item in items:
        if item.report_path is not None:
            m.console.print(f"report of {escape(item.path.name)}: {item.report_path.resolve()}")
    done = sum(1 for i in items if i.summary is not None)
    m.console.print(f"{done} of {len(items)} files analysed")


# -- API keys ---------------------------------------------------------------------------------


@click.group("apikey")
def apikey_group() -> None:
    """Create, list and revoke keys of the REST API (stored hashed in DynamoDB)."""


@apikey_group.command("create")
@click.argument("name")
@click.option("--tenant", default=None, help="The tenant whose projects the key sees.")
@click.option("--admin", is_flag=True, help="The key sees every project.")
@m.target_options
def apikey_create(
    name: str, tenant: str | None, admin: bool, use_aws: bool, state_dir: Path
) -> None:
    """Create a key named NAME; the secret is printed once and never stored."""
    if admin == (tenant is not None):
        raise click.UsageError("give exactly one of --tenant T and --admin")
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_apikey_create(target, name, tenant, admin)))


async def _apikey_create(target: Target, name: str, tenant: str | None, admin: bool) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        try:
            secret, key = await _keys(clients, target).create(name, tenant=tenant, admin=admin)
        except ApiKeyError as exc:
            raise click.ClickException(str(exc)) from None
    scope = "every project" if admin else f"tenant {tenant}'s projects"
    m.err_console.print(f"key {key.key_id} ({escape(name)}) for {scope}; keep it secret:")
    m.console.print(secret)
    return 0


@apikey_group.command("list")
@m.target_options
def apikey_list(use_aws: bool, state_dir: Path) -> None:
    """List keys (ids and scopes, never secrets)."""
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_apikey_list(target)))


async def _apikey_list(target: Target) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        keys = await _keys(clients, target).list()
    table = Table(title="API keys", title_justify="left")
    for column in ("id", "name", "scope", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        d = describe(key)
        scope = "admin" if d["admin"] else f"tenant {d['tenant']}"
        table.add_row(
            d["key_id"],
            escape(d["name"]),
            scope,
            d["created_at"][:19],
            "yes" if d["revoked"] else "",
        )
    m.console.print(table)
    return 0


@apikey_group.command("revoke")
@click.argument("key_id")
@m.target_options
def apikey_revoke(key_id: str, use_aws: bool, state_dir: Path) -> None:
    """Revoke the key KEY_ID (as `apikey list` shows it)."""
    target = m._target(use_aws, state_dir)
    sys.exit(m._run(_apikey_revoke(target, key_id)))


async def _apikey_revoke(target: Target, key_id: str) -> int:
    async with AwsClients(target.aws, services=("dynamodb",)) as clients:
        try:
            key = await _keys(clients, target).revoke(key_id)
        except ApiKeyError as exc:
            raise click.ClickException(str(exc)) from None
    m.console.print(f"revoked key {key.key_id} ({escape(key.name)})")
    return 0


def _keys(clients: AwsClients, target: Target) -> ApiKeyStore:
    return ApiKeyStore(clients.dynamodb, target.names.table("apikeys"))


for _command in (analyze_command, apikey_group):  # registered on import, like the others
    m.command_group().add_command(_command)
