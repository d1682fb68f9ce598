"""The REST API, served by ingest: projects, uploads, jobs, results, reports.

Every route but ``/health`` needs ``Authorization: Bearer <key>`` (see
:mod:`brandlens_core.apikeys`). A key sees its tenant's projects; anything of
another tenant answers 404 exactly as if it did not exist. Uploads are presigned
S3 POSTs, so file bytes never pass through this process: the object lands in the
media bucket and becomes a job through the same event path as any producer's
upload.

Routes are declared once in :data:`ROUTES`; the aiohttp router and the OpenAPI
document (``GET /v1/openapi.json``) are both built from that table.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandlens_core.apikeys import ApiKey, ApiKeyStore
from brandlens_core.aws import Client, error_code
from brandlens_core.events import Purpose, utc_now
from brandlens_core.jobs import (
    Job,
    JobNotFoundError,
    JobStatus,
    JobStore,
    ResultsState,
    framed_progress,
    results_state,
)
from brandlens_core.logging import get_logger
from brandlens_core.messages import FrameBatch
from brandlens_core.projects import ConflictError, LabelingBackend, Project, ProjectStore
from brandlens_core.results import Summary
from brandlens_ingest.api_models import (
    DetectionPage,
    ErrorBody,
    FrameDetections,
    Health,
    JobLinks,
    JobPage,
    JobProgress,
    JobView,
    ProjectCreate,
    ProjectList,
    ProjectView,
    UploadRequest,
    UploadTicket,
)
from brandlens_ingest.keys import PROJECT_RE
from brandlens_ingest.settings import IngestSettings

log = get_logger(__name__)

API_VERSION = "1.0.0"
MAX_BODY_BYTES = 64 * 1024
MAX_POST_BYTES = 5 * 1024**3  # S3 refuses a POST upload larger than 5 GiB
JOB_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
# The report is self-contained: nothing may load from anywhere, scripts may not run.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


@dataclass
class ApiContext:
    s3: Client
    jobs: JobStore
    projects: ProjectStore
    keys: ApiKeyStore
    media_bucket: str
    artifacts_bucket: str
    settings: IngestSettings


class ApiError(Exception):
    """Answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def no_model_message(project: str) -> str:
    """Why an analysis upload is refused: the words `brandlens analyze` uses."""
    return (
        f"project {project!r} has no trained model yet: upload training media and "
        "annotations first (see `brandlens train`)"
    )


# -- query strings ----------------------------------------------------------------------------


class JobQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = Field(default=None, description="only jobs in this status")
    purpose: Literal["analysis", "training"] | None = None
    key: str | None = Field(
        default=None, min_length=1, max_length=1024, description="only jobs of this object key"
    )
    limit: int = Field(default=20, ge=1, le=100, description="jobs per page")
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="opaque: the next_cursor of the previous page",
    )


class DetectionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=1000, description="frames per page")
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="opaque: the next_cursor of the previous page",
    )


def _query(request: web.Request, model: type[BaseModel]) -> Any:
    data: dict[str, str] = {}
    for name in request.query:
        values = request.query.getall(name)
        if len(values) > 1:
            raise ApiError(400, f"query parameter {name!r} is given {len(values)} times")
        data[name] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid("query string", exc) from None


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    if request.content_type != "application/json":
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid("body", exc) from None


def _invalid(where: str, exc: ValidationError) -> ApiError:
    details = [
        {"field": ".".join(str(p) for p in e["loc"]) or where, "message": e["msg"]}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return ApiError(400, f"invalid {where}: {summary}", details)


def _encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, model: type[BaseModel]) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return model.model_validate_json(raw)
    except (binascii.Error, ValueError, ValidationError):
        raise ApiError(
            400, "the cursor is not one this API gave out; start again without it"
        ) from None


class _JobCursor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str = Field(max_length=128)
    created_at: str = Field(max_length=64)


class _DetectionCursor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch: int = Field(ge=0)
    offset: int = Field(ge=0)


# -- access -----------------------------------------------------------------------------------


async def _visible_project(ctx: ApiContext, key: ApiKey, name: str) -> Project:
    if not PROJECT_RE.match(name):
        raise not_found("project")
    project = await ctx.projects.find_project(name)
    if project is None or not key.can_see(project.owner):
        raise not_found("project")
    return project


async def _visible_job(ctx: ApiContext, key: ApiKey, job_id: str) -> Job:
    try:
        job = await ctx.jobs.get(job_id)
    except JobNotFoundError:
        raise not_found("job") from None
    if key.admin:
        return job
    project = await ctx.projects.find_project(job.project) if job.project else None
    if project is None or not key.can_see(project.owner):
        raise not_found("job")
    return job


def _project_view(project: Project) -> ProjectView:
    return ProjectView(
        name=project.project,
        brands=project.brands,
        labeling=project.labeling.value,
        current_model=project.current_model_arn,
        created_at=project.created_at,
    )


def _percent(job: Job, planned: Any, done: Any, batch_count: Any) -> float | None:
    """How far the job is, never going back: an analysis is half framing (frames sampled)
    and half analysis (batches analysed); other jobs count their framing only."""
    if job.status is JobStatus.COMPLETED:
        return 100.0
    framed = (
        min(done, planned) / planned
        if isinstance(planned, int) and planned > 0 and isinstance(done, int)
        else None
    )
    if job.purpose is not Purpose.ANALYSIS:
        return None if framed is None else round(100.0 * framed, 1)
    if isinstance(batch_count, int) and batch_count > 0:  # framing is over
        return round(50.0 + 50.0 * min(job.batches_done, batch_count) / batch_count, 1)
    return None if framed is None else round(50.0 * framed, 1)


def _job_view(job: Job) -> JobView:
    progress = framed_progress(job)  # the framer's final figures once framing is over
    planned = progress.get("frames_planned")
    done = progress.get("frames_done")
    analysed = progress.get("frames_analysed")
    batch_count = job.framing.get("batch_count")
    percent = _percent(job, planned, done, batch_count)
    base = f"/v1/jobs/{job.job_id}"
    done_analysis = job.status is JobStatus.COMPLETED and job.summary_key is not None
    frame_count = job.framing.get("frame_count")
    return JobView(
        job_id=job.job_id,
        project=job.project,
        purpose=job.purpose.value if job.purpose else None,
        status=job.status,
        reason=job.reason,
        media=job.media,
        frame_count=frame_count if isinstance(frame_count, int) else None,
        created_at=job.created_at,
        updated_at=job.updated_at,
        progress=JobProgress(
            stage=job.status.value.lower(),
            frames_done=done if isinstance(done, int) else None,
            frames_planned=planned if isinstance(planned, int) else None,
            batches_done=job.batches_done,
            batch_count=batch_count if isinstance(batch_count, int) else None,
            frames_analysed=analysed if isinstance(analysed, int) else None,
            percent=percent,
        ),
        links=JobLinks(
            summary=f"{base}/summary" if done_analysis else None,
            detections=f"{base}/detections" if done_analysis else None,
            report=f"{base}/report" if job.report_key else None,
        ),
    )


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode(), status=status, content_type="application/json"
    )


async def _read_artifact(ctx: ApiContext, key: str) -> bytes:
    try:
        response = await ctx.s3.get_object(Bucket=ctx.artifacts_bucket, Key=key)
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            raise ApiError(404, "the result file is missing from the artifacts bucket") from None
        raise
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


def _completed(job: Job) -> None:
    """Results exist, or: 410 for a job that will never have them (a polling client stops),
    409 for one that may still complete."""
    state, why = results_state(job)
    if state is ResultsState.NEVER:
        raise ApiError(410, why)
    if state is ResultsState.PENDING:
        raise ApiError(409, why)


# -- handlers ---------------------------------------------------------------------------------

Handler = Callable[[web.Request, ApiContext, ApiKey], Awaitable[web.StreamResponse]]


async def list_projects(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    projects = [p for p in await ctx.projects.list_projects() if key.can_see(p.owner)]
    return _json(ProjectList(items=[_project_view(p) for p in projects]))


async def create_project(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    body: ProjectCreate = await _body(request, ProjectCreate)
    project = Project(
        project=body.name,
        brands=body.brands,
        labeling=LabelingBackend(body.labeling),
        owner=key.tenant,
    )
    try:
        await ctx.projects.create_project(project)
    except ConflictError:
        raise ApiError(409, f"the project name {body.name!r} is taken; choose another") from None
    log.info("api.project_created", project=project.project, key_id=key.key_id)
    response = _json(_project_view(project), status=201)
    response.headers["Location"] = f"/v1/projects/{project.project}"
    return response


async def get_project(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    project = await _visible_project(ctx, key, request.match_info["project"])
    return _json(_project_view(project))


async def create_upload(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    project = await _visible_project(ctx, key, request.match_info["project"])
    body: UploadRequest = await _body(request, UploadRequest)
    if body.purpose == "analysis" and not project.current_model_arn:
        # refused now rather than failed by the inferer a minute after the upload
        raise ApiError(409, no_model_message(project.project))
    if body.purpose == "annotations":
        object_key = f"training/{project.project}/annotations/{body.file_name}"
    else:
        object_key = f"{body.purpose}/{project.project}/{body.file_name}"
    if len(object_key.encode()) > 1024:
        raise ApiError(400, "the file name is too long for an S3 key (1024 bytes in all)")
    max_bytes = min(MAX_POST_BYTES, max(ctx.settings.max_video_bytes, ctx.settings.max_image_bytes))
    seconds = ctx.settings.api_upload_url_seconds
    post = await ctx.s3.generate_presigned_post(
        Bucket=ctx.media_bucket,
        Key=object_key,
        Conditions=[["content-length-range", 1, max_bytes]],
        ExpiresIn=seconds,
    )
    ticket = UploadTicket(
        url=post["url"],
        fields={str(k): str(v) for k, v in post["fields"].items()},
        key=object_key,
        max_bytes=max_bytes,
        expires_at=utc_now() + timedelta(seconds=seconds),
        jobs_url=None
        if body.purpose == "annotations"
        else f"/v1/projects/{project.project}/jobs?key={_quote(object_key)}",
    )
    log.info("api.upload_ticket", project=project.project, key=object_key, key_id=key.key_id)
    return _json(ticket, status=201)


def _quote(value: str) -> str:
    return quote(value, safe="")


async def list_jobs(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    project = await _visible_project(ctx, key, request.match_info["project"])
    query: JobQuery = _query(request, JobQuery)
    after: tuple[str, str] | None = None
    if query.cursor is not None:
        cursor: _JobCursor = _decode_cursor(query.cursor, _JobCursor)
        after = (cursor.job_id, cursor.created_at)
    try:
        jobs, following = await ctx.jobs.page(
            project.project,
            limit=query.limit,
            after=after,
            status=query.status,
            purpose=query.purpose,
            key=query.key,
        )
    except Exception as exc:
        if error_code(exc) == "ValidationException" and after is not None:
            raise ApiError(400, "the cursor does not belong to this listing") from None
        raise
    next_cursor = None
    if following is not None:
        next_cursor = _encode_cursor({"job_id": following[0], "created_at": following[1]})
    return _json(JobPage(items=[_job_view(j) for j in jobs], next_cursor=next_cursor))


async def get_job(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    job = await _visible_job(ctx, key, request.match_info["job_id"])
    return _json(_job_view(job))


async def get_summary(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    job = await _visible_job(ctx, key, request.match_info["job_id"])
    _completed(job)
    assert job.summary_key is not None
    data = await _read_artifact(ctx, job.summary_key)
    return web.Response(body=data, content_type="application/json")


async def list_detections(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    job = await _visible_job(ctx, key, request.match_info["job_id"])
    query: DetectionQuery = _query(request, DetectionQuery)
    _completed(job)
    # The batches counted on the job row, as aggregation reads them: a batch none of
    # whose frames decoded was never sent, so 0..batch_count-1 may name a missing one.
    counted = await ctx.jobs.counted_batches(job.job_id)
    indices = sorted(
        i for i in (FrameBatch.index_of(job.job_id, b) for b in counted) if i is not None
    )
    batch, offset = (indices[0] if indices else 0), 0
    if query.cursor is not None:
        cursor: _DetectionCursor = _decode_cursor(query.cursor, _DetectionCursor)
        batch, offset = cursor.batch, cursor.offset
    remaining = [i for i in indices if i >= batch]
    if not remaining or remaining[0] != batch:
        offset = 0  # the cursor's offset belongs to its own batch only
    items: list[FrameDetections] = []
    next_cursor: str | None = None
    while remaining:
        batch = remaining[0]
        data = json.loads(await _read_artifact(ctx, f"detections/{job.job_id}/{batch:06d}.json"))
        frames = sorted(data.get("frames", []), key=lambda f: int(f["index"]))
        while offset < len(frames) and len(items) < query.limit:
            items.append(FrameDetections.model_validate(frames[offset]))
            offset += 1
        if offset >= len(frames):
            remaining.pop(0)
            offset = 0
        if len(items) >= query.limit:
            break
    if remaining:
        next_cursor = _encode_cursor({"batch": remaining[0], "offset": offset})
    return _json(DetectionPage(job_id=job.job_id, items=items, next_cursor=next_cursor))


async def get_report(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    job = await _visible_job(ctx, key, request.match_info["job_id"])
    if job.report_key is None:
        _completed(job)
        raise ApiError(404, f"job {job.job_id} has no report")
    data = await _read_artifact(ctx, job.report_key)
    response = web.Response(body=data, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


async def get_openapi(request: web.Request, ctx: ApiContext, key: ApiKey) -> web.Response:
    return web.json_response(openapi_document())


async def health(request: web.Request) -> web.Response:
    return _json(Health(status="ok"))


# -- the route table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    ok: int = 200
    response: type[BaseModel] | Literal["html", "json"] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)


PROJECT_PARAM = {"project": PROJECT_RE.pattern}
JOB_PARAM = {"job_id": JOB_ID_PATTERN}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/openapi.json", get_openapi, "getOpenApi", "This document", response="json"),
    Route("GET", "/v1/projects", list_projects, "listProjects", "Projects this key can see",
          response=ProjectList),
    Route("POST", "/v1/projects", create_project, "createProject",
          "Create a project with its brands", ok=201, response=ProjectView, body=ProjectCreate,
          errors=(400, 409, 413, 415)),
    Route("GET", "/v1/projects/{project}", get_project, "getProject", "One project",
          response=ProjectView, errors=(404,), path_params=PROJECT_PARAM),
    Route("POST", "/v1/projects/{project}/uploads", create_upload, "createUpload",
          "A presigned S3 POST for one file; it becomes a job when it lands", ok=201,
          response=UploadTicket, body=UploadRequest, errors=(400, 404, 409, 413, 415),
          path_params=PROJECT_PARAM),
    Route("GET", "/v1/projects/{project}/jobs", list_jobs, "listJobs",
          "A project's jobs, newest first, filtered and paginated", response=JobPage,
          query=JobQuery, errors=(400, 404), path_params=PROJECT_PARAM),
    Route("GET", "/v1/jobs/{job_id}", get_job, "getJob", "One job with its progress",
          response=JobView, errors=(404,), path_params=JOB_PARAM),
    Route("GET", "/v1/jobs/{job_id}/summary", get_summary, "getSummary",
          "The job's per-brand statistics (summary.json, schema version 1)", response=Summary,
          errors=(404, 409, 410), path_params=JOB_PARAM),
    Route("GET", "/v1/jobs/{job_id}/detections", list_detections, "listDetections",
          "Every analysed frame's detections, in frame order, paginated",
          response=DetectionPage, query=DetectionQuery, errors=(400, 404, 409, 410),
          path_params=JOB_PARAM),
    Route("GET", "/v1/jobs/{job_id}/report", get_report, "getReport",
          "The job's self-contained HTML report", response="html", errors=(404, 409, 410),
          path_params=JOB_PARAM),
)  # fmt: skip


# -- the application --------------------------------------------------------------------------

AUTH_HINT = "send a valid API key as 'Authorization: Bearer <key>' (`brandlens apikey create`)"


def _error_response(status: int, message: str, details: Any = None) -> web.Response:
    body = ErrorBody(error=message, details=details).model_dump_json(exclude_none=True)
    response = web.Response(body=body.encode(), status=status, content_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="brandlens"'
    return response


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error_response(exc.status, exc.message, exc.details)
    except web.HTTPRequestEntityTooLarge:
        return _error_response(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(exc.status, exc.reason)
    except Exception:
        request_id = uuid.uuid4().hex[:12]
        log.exception("api.internal_error", request_id=request_id, path=request.path)
        return _error_response(500, f"internal error (request {request_id}); see the ingest log")


def _authenticated(handler: Handler, ctx: ApiContext) -> Callable[[web.Request], Awaitable[Any]]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        key = await ctx.keys.check(secret.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ApiError(401, f"missing or invalid API key: {AUTH_HINT}")
        return await handler(request, ctx, key)

    return wrapped


def create_api(ctx: ApiContext) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/health", health)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _authenticated(route.handler, ctx))
    return app


# -- OpenAPI ----------------------------------------------------------------------------------


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ROUTES` (schemas from the pydantic models), built
    once per process; callers must not change it."""
    from pydantic.json_schema import models_json_schema

    models: list[type[BaseModel]] = [ErrorBody, Health]
    for route in ROUTES:
        for model in (route.response, route.body):
            if isinstance(model, type) and model not in models:
                models.append(model)
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": ref(ErrorBody)}},
        }

    descriptions = {
        400: "Bad request: the message says which field and why",
        401: "No API key, or not a valid one",
        404: "Not found, or not visible to this key",
        409: "Conflict: the name is taken, the project has no trained model to analyse "
        "with, or the job has no results yet (it may still complete: poll the job)",
        410: "Gone: this job will never have results (a training job, or one rejected or "
        "failed); the message says why; stop polling",
        413: "The body is too large",
        415: "The body is not JSON",
    }
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness (no key needed)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": {"application/json": {"schema": ref(Health)}},
                    }
                },
            }
        }
    }
    for route in ROUTES:
        operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": pattern},
            }
            for name, pattern in route.path_params.items()
        ]
        if route.query is not None:
            query_schema = route.query.model_json_schema()
            for name, prop in query_schema["properties"].items():
                prop = dict(prop)
                description = prop.pop("description", None)
                prop.pop("title", None)
                if "anyOf" in prop:  # X | None: the parameter is optional anyway
                    options = [o for o in prop.pop("anyOf") if o.get("type") != "null"]
                    prop.update(options[0])
                    prop.pop("default", None)
                if "$ref" in prop:
                    prop = query_schema["$defs"][prop["$ref"].rsplit("/", 1)[1]]
                    prop = {k: v for k, v in prop.items() if k != "title"}
                parameter = {"name": name, "in": "query", "required": False, "schema": prop}
                if description:
                    parameter["description"] = description
                parameters.append(parameter)
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route.body)}},
            }
        if route.response == "html":
            content: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
        elif route.response == "json":
            content = {"application/json": {"schema": {"type": "object"}}}
        else:
            assert isinstance(route.response, type)
            content = {"application/json": {"schema": ref(route.response)}}
        responses: dict[str, Any] = {str(route.ok): {"description": "OK", "content": content}}
        for status in (401, *route.errors):
            responses[str(status)] = error(descriptions[status])
        operation["responses"] = responses
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "brandlens",
            "version": API_VERSION,
            "description": "Brand detection in images and video: projects, uploads, jobs, "
            "results and reports. Every operation but /health needs a bearer API key.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
        "paths": paths,
    }
