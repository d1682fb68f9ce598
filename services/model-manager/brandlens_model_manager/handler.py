"""Model runtime: start on demand (exactly once), follow, stop when idle.

Messages on the model-manager queue (JSON commands):

- ``ensure`` (from inferers holding a lease): the model should run. The first to move the
  state row STOPPED -> STARTING (a conditional write) calls StartProjectVersion; every
  other ensure, at the same moment or later, finds STARTING or RUNNING and does nothing.
- ``follow``: the manager's own delayed messages, until STARTING becomes RUNNING (or
  FAILED) and STOPPING becomes STOPPED.

A timer (:func:`reap`) looks at every running model: with no live lease it marks the
model idle, and once idle for ``idle_grace_seconds`` stops it with a conditional write on
the ``last_lease_at`` it read, so a lease taken meanwhile keeps the model running.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandlens_core.aws import Client, error_code
from brandlens_core.envelopes import InvalidMessageError
from brandlens_core.events import Event, ModelFailed, ModelRunning, ModelStopped, deterministic_id
from brandlens_core.follow import backoff_delay, poll_action, send_delayed
from brandlens_core.logging import get_logger
from brandlens_core.publisher import EventPublisher
from brandlens_core.runtime import (
    ModelRuntimeStatus,
    ModelState,
    RuntimeStore,
    StaleStateError,
)
from brandlens_model_manager.settings import ModelManagerSettings

log = get_logger(__name__)

SOURCE = "brandlens.model-manager"
ARN_PATTERN = r"^arn:aws[a-z\-]*:rekognition:[a-z0-9\-]+:\d{12}:project/[a-zA-Z0-9_.\-]{1,255}/version/[a-zA-Z0-9_.\-]{1,255}/\d+$"  # noqa: E501
Status = ModelRuntimeStatus


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Literal["ensure", "follow"]
    model: str = Field(pattern=ARN_PATTERN)
    project: str | None = Field(default=None, max_length=63)
    holder: str | None = Field(default=None, max_length=200)
    seq: int = Field(default=0, ge=0)


def decode(body: str) -> Command:
    try:
        return Command.model_validate(json.loads(body))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InvalidMessageError(f"not a model-manager command: {exc}") from exc


def message_key(command: Command) -> str | None:
    if command.command == "follow":
        return f"follow:{command.model}:{command.seq}"
    return None  # ensures are idempotent by the state row's conditional writes


def project_name_of(version_arn: str) -> str:
    return version_arn.split(":project/", 1)[1].split("/", 1)[0]


def version_name_of(version_arn: str) -> str:
    return version_arn.split("/version/", 1)[1].split("/", 1)[0]


@dataclass
class ManagerContext:
    sqs: Client
    rekognition: Client
    runtime: RuntimeStore
    publisher: EventPublisher
    queue_url: str
    settings: ModelManagerSettings
    project_arns: dict[str, str] = field(default_factory=dict)


async def handle(command: Command, ctx: ManagerContext) -> None:
    structlog.contextvars.bind_contextvars(model=command.model)
    if command.command == "ensure":
        await ensure(command.model, ctx)
    else:
        await on_follow(command.model, command.seq, ctx)


async def ensure(model: str, ctx: ManagerContext) -> None:
    state = await ctx.runtime.state(model)
    now = time.time()
    if state.status in (Status.STARTING, Status.RUNNING, Status.STOPPING):
        return  # running, on its way, or about to stop (the stop's follow restarts it)
    if (
        state.status is Status.FAILED
        and now - state.status_since < ctx.settings.retry_failed_after_seconds
    ):
        return
    try:
        state = await ctx.runtime.change(
            model,
            {"status": Status.STARTING.value, "status_since": now, "reason": None,
             "idle_since": None},
            expect={"status": state.status.value, "status_since": state.status_since},
            add={"start_calls": 1},
        )  # fmt: skip
    except StaleStateError:
        return  # another ensure won: it starts the model
    await _start(state, ctx)


async def _start(state: ModelState, ctx: ManagerContext) -> None:
    request: dict[str, Any] = {
        "ProjectVersionArn": state.model,
        "MinInferenceUnits": ctx.settings.min_inference_units,
    }
    if ctx.settings.max_inference_units:
        request["MaxInferenceUnits"] = ctx.settings.max_inference_units
    try:
        await ctx.rekognition.start_project_version(**request)
        log.info("model.starting", units=ctx.settings.min_inference_units)
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceInUseException":
            log.info("model.already_starting_or_running")
        elif code in ("ResourceNotFoundException", "InvalidParameterException",
                      "AccessDeniedException", "ValidationException"):  # fmt: skip
            await fail(state, f"StartProjectVersion refused: {exc}", ctx)
            return
        else:
            raise
    await schedule_follow(state, ctx)


async def schedule_follow(state: ModelState, ctx: ManagerContext, *, resend: bool = False) -> None:
    seq = state.poll_seq + (0 if resend else 1)
    if not resend:
        try:
            await ctx.runtime.change(
                state.model, {"poll_seq": seq}, expect={"poll_seq": state.poll_seq}
            )
        except StaleStateError:
            return
    command = Command(command="follow", model=state.model, seq=seq)
    delay = backoff_delay(
        seq, ctx.settings.poll_interval_seconds, ctx.settings.poll_max_interval_seconds
    )
    await send_delayed(ctx.sqs, ctx.queue_url, command.model_dump_json(), delay)


async def _project_arn(model: str, ctx: ManagerContext) -> str | None:
    """A version ARN names its project but not the project's ARN (its creation time):
    found once with DescribeProjects and kept in memory."""
    name = project_name_of(model)
    if name not in ctx.project_arns:
        response = await ctx.rekognition.describe_projects(ProjectNames=[name])
        found = response.get("ProjectDescriptions") or []
        if not found:
            return None
        ctx.project_arns[name] = str(found[0]["ProjectArn"])
    return ctx.project_arns[name]


async def _describe(model: str, ctx: ManagerContext) -> dict[str, Any] | None:
    project_arn = await _project_arn(model, ctx)
    if project_arn is None:
        return None
    response = await ctx.rekognition.describe_project_versions(
        ProjectArn=project_arn, VersionNames=[version_name_of(model)]
    )
    found = response.get("ProjectVersionDescriptions") or []
    return dict(found[0]) if found else None


async def on_follow(model: str, seq: int, ctx: ManagerContext) -> None:
    state = await ctx.runtime.state(model)
    if state.status not in (Status.STARTING, Status.STOPPING):
        return
    action = poll_action(state.poll_seq, seq)
    if action == "resend":
        await schedule_follow(state, ctx, resend=True)
    if action != "act":
        return
    described = await _describe(model, ctx)
    if described is None:
        await fail(state, "the model version does not exist", ctx)
        return
    service = str(described.get("Status"))
    now = time.time()
    if state.status is Status.STARTING:
        if service == "RUNNING":
            units = int(described.get("MinInferenceUnits") or ctx.settings.min_inference_units)
            try:
                state = await ctx.runtime.change(
                    model,
                    {"status": Status.RUNNING.value, "status_since": now, "started_at": now,
                     "inference_units": units, "idle_since": None},
                    expect={"status": Status.STARTING.value},
                )  # fmt: skip
            except StaleStateError:
                return
            log.info("model.running", units=units)
            await _publish(
                ModelRunning(
                    event_id=deterministic_id("ModelRunning", model, str(state.start_calls)),
                    project_version_arn=model,
                    inference_units=units,
                ),
                ctx,
            )
            return
        if service == "FAILED":
            await fail(state, str(described.get("StatusMessage") or "the model failed"), ctx)
            return
        if service in ("STOPPED", "TRAINING_COMPLETED", "EXPIRED", "DEPRECATED"):
            # the start did not take (or never went out before a crash): ask again
            await _start(state, ctx)
            return
        await schedule_follow(state, ctx)  # STARTING at the service
        return
    # STOPPING
    if service in ("STOPPED", "TRAINING_COMPLETED", "FAILED", "EXPIRED"):
        ran = now - state.started_at if state.started_at else 0.0
        try:
            state = await ctx.runtime.change(
                model,
                {"status": Status.STOPPED.value, "status_since": now, "started_at": None,
                 "idle_since": None},
                expect={"status": Status.STOPPING.value},
                add={"running_seconds": ran},
            )  # fmt: skip
        except StaleStateError:
            return
        log.info("model.stopped", ran_seconds=round(ran, 1), cost=cost(state, ctx.settings))
        await _publish(
            ModelStopped(
                event_id=deterministic_id("ModelStopped", model, str(state.start_calls)),
                project_version_arn=model,
                running_seconds=round(ran, 3),
            ),
            ctx,
        )
        if await ctx.runtime.live_leases(model):
            await ensure(model, ctx)  # a job arrived while it stopped: run again
        return
    await schedule_follow(state, ctx)


def cost(state: ModelState, settings: ModelManagerSettings) -> float:
    """Cost of the model's running time so far (closed runs), at the configured price."""
    hours = state.running_seconds / 3600
    return round(hours * state.inference_units * settings.price_per_inference_unit_hour, 4)


async def fail(state: ModelState, reason: str, ctx: ManagerContext) -> None:
    log.warning("model.failed", reason=reason)
    try:
        state = await ctx.runtime.change(
            state.model,
            {"status": Status.FAILED.value, "status_since": time.time(), "reason": reason},
            expect={"status": state.status.value},
        )
    except StaleStateError:
        return
    holders = sorted(lease.holder for lease in await ctx.runtime.live_leases(state.model))
    await _publish(
        ModelFailed(
            event_id=deterministic_id("ModelFailed", state.model, str(state.start_calls)),
            project_version_arn=state.model,
            reason=reason,
            job_ids=holders,
        ),
        ctx,
    )


async def _publish(event: Event, ctx: ManagerContext) -> None:
    await ctx.publisher.publish(event)


async def reap(ctx: ManagerContext) -> None:
    """One look at every running model: idle ones are stopped after the grace period."""
    for state in await ctx.runtime.states():
        if state.status is not Status.RUNNING:
            continue
        try:
            await _reap_one(state, ctx)
        except StaleStateError:
            continue  # a lease or another manager changed it: look again next time
        except Exception as exc:  # one model's trouble must not stop the others' reaping
            log.error("reap.failed", model=state.model, error=f"{type(exc).__name__}: {exc}")


async def _reap_one(state: ModelState, ctx: ManagerContext) -> None:
    now = time.time()
    live = await ctx.runtime.live_leases(state.model, now)
    seen = {"status": Status.RUNNING.value, "last_lease_at": state.last_lease_at}
    if live:
        fields: dict[str, Any] = {}
        if state.idle_since is not None:
            fields["idle_since"] = None
        if state.busy_since is None:
            fields["busy_since"] = now
        if fields:
            await ctx.runtime.change(state.model, fields, expect={"status": Status.RUNNING.value})
        return
    if state.busy_since is not None:
        # busy until the last lease ended (released, or its expiry)
        leases = await ctx.runtime.leases(state.model)
        ended = max(
            [
                state.last_lease_at,
                *(lease.expires_at for lease in leases if lease.expires_at <= now),
            ]
        )
        await ctx.runtime.change(
            state.model,
            {"busy_since": None},
            expect={"busy_since": state.busy_since},
            add={"busy_seconds": max(0.0, min(ended, now) - state.busy_since)},
        )
        state = await ctx.runtime.state(state.model)
        seen["last_lease_at"] = state.last_lease_at
    if state.idle_since is None:
        await ctx.runtime.change(state.model, {"idle_since": now}, expect=seen)
        log.info("model.idle", grace_s=ctx.settings.idle_grace_seconds)
        return
    if now - state.idle_since < ctx.settings.idle_grace_seconds:
        return
    stopping = await ctx.runtime.change(
        state.model, {"status": Status.STOPPING.value, "status_since": now}, expect=seen
    )
    try:
        await ctx.rekognition.stop_project_version(ProjectVersionArn=state.model)
        log.info("model.stopping", idle_s=round(now - state.idle_since, 1))
    except Exception as exc:
        if error_code(exc) not in ("ResourceInUseException",):
            raise
    await schedule_follow(stopping, ctx)
