"""``brandlens analyze`` (through the REST API) and ``brandlens apikey`` (keys of that API).

``analyze`` is what an API user's program does: ask for an upload ticket, POST the
file to S3, follow the job it becomes, print the per-brand table and save the
report. The API's address and key come from ``--api-url``/``--api-key`` (or
``BRANDLENS_API_URL``/``BRANDLENS_API_KEY``), else from the running local stack.
"""

from __future__ import annotations

import asyncio
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
from brandlens_cli.target import Target
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
            "no API given and no local stack running: start one with `brandlens up`, or pass "
            "--api-url and --api-key (or set BRANDLENS_API_URL and BRANDLENS_API_KEY)"
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


async def analyze_file(
    api: ApiClient,
    path: Path,
    project: str,
    *,
    timeout_seconds: float,
    reports_dir: Path,
) -> Analysis:
    """Upload ``path`` for analysis in ``project``, follow the job, fetch its results."""
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
    ticket = await api.post(
        f"/v1/projects/{project}/uploads", {"file_name": path.name, "purpose": "analysis"}
    )
    size = (await asyncio.to_thread(path.stat)).st_size
    if size > ticket["max_bytes"]:
        raise click.ClickException(
            f"{path.name} is {size} bytes; API uploads take at most {ticket['max_bytes']} "
            "(larger files: `brandlens submit`, which uploads in parts)"
        )
    since = datetime.now().astimezone() - timedelta(seconds=5)
    with m._spinner(f"uploading {escape(path.name)} ({size / 1e6:.1f} MB)…"):
        await api.upload(ticket, path)
    job = await follow_job(api, ticket["jobs_url"], since, timeout_seconds, path.name)
    if job["status"] != "COMPLETED":
        return Analysis(job, None, None)
    summary = await api.get(job["links"]["summary"])
    report_path = None
    if job["links"].get("report"):
        html = await api.get(job["links"]["report"])
        report_path = reports_dir / f"{job['job_id']}.html"
        await asyncio.to_thread(_write, report_path, html)
    return Analysis(job, summary, report_path)


async def follow_job(
    api: ApiClient, jobs_url: str, since: datetime, timeout_seconds: float, label: str
) -> dict[str, Any]:
    """Find the job of the upload, then poll it until it ends; a progress bar meanwhile."""
    deadline = time.monotonic() + timeout_seconds
    job: dict[str, Any] | None = None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=m.console, transient=True) as progress:
        task = progress.add_task(f"{escape(label)}: waiting for ingest", total=100)
        while time.monotonic() < deadline:
            if job is None:
                page = await api.get(jobs_url)
                fresh = [
                    j for j in page["items"] if datetime.fromisoformat(j["created_at"]) >= since
                ]
                job = fresh[0] if fresh else None
            else:
                job = await api.get(f"/v1/jobs/{job['job_id']}")
            if job is not None:
                p = job["progress"]
                detail = p["stage"]
                if p.get("batch_count"):
                    detail += f" ({p['batches_done']}/{p['batch_count']} batches)"
                elif p.get("frames_planned"):
                    detail += f" ({p.get('frames_done') or 0}/{p['frames_planned']} frames)"
                progress.update(
                    task, description=f"{escape(label)}: {detail}", completed=p.get("percent") or 0
                )
                if job["status"] in TERMINAL:
                    return job
            await asyncio.sleep(m.POLL_INTERVAL_SECONDS)
    what = f"job {job['job_id']} is still {job['status']}" if job else "no job appeared"
    raise click.ClickException(
        f"{label}: {what} after {timeout_seconds:.0f}s; follow it with `brandlens job ID` or "
        "raise --timeout-seconds"
    )


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def brand_table(summary: Mapping[str, Any], title: str = "brands") -> Table:
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


def print_analysis(analysis: Analysis) -> int:
    job = analysis.job
    if analysis.summary is None:
        m.err_console.print(
            f"[red]job {job['job_id']} {job['status']}[/]: {escape(job.get('reason') or '')}"
        )
        return 1
    summary = analysis.summary
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


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@click.command("analyze")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--project", required=True, callback=m.validate_project, help="Project name.")
@click.option(
    "--timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=1800,
    show_default=True,
    help="How long to follow the job.",
)
@click.option("--open", "open_it", is_flag=True, help="Open the report in a browser.")
@api_options
def analyze_command(
    file: Path,
    project: str,
    timeout_seconds: float,
    open_it: bool,
    api_url: str | None,
    api_key: str | None,
    state_dir: Path,
) -> None:
    """Analyse FILE with PROJECT's model: upload, follow, print the per-brand table."""
    m._quiet_logging()
    url, key = api_settings(api_url, api_key, state_dir)
    sys.exit(m._run(_analyze(url, key, file, project, timeout_seconds, open_it, state_dir)))


async def _analyze(
    url: str,
    key: str,
    file: Path,
    project: str,
    timeout_seconds: float,
    open_it: bool,
    state_dir: Path,
) -> int:
    async with aiohttp.ClientSession() as http:
        api = ApiClient(url, key, http)
        analysis = await analyze_file(
            api, file, project, timeout_seconds=timeout_seconds, reports_dir=state_dir / "reports"
        )
    code = print_analysis(analysis)
    if open_it and analysis.report_path is not None:
        webbrowser.open(analysis.report_path.resolve().as_uri())
    return code


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
