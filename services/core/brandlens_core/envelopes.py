"""The outer AWS shapes a message arrives in, validated before the payload.

Wire models keep AWS's casing through aliases; the payload is then parsed into
the domain model (see :mod:`brandlens_core.events`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from brandlens_core.events import Event, parse_event


class InvalidMessageError(ValueError):
    """The message body is not what this queue carries. Retried, then dead-lettered."""


class EventBridgeEnvelope(BaseModel):
    """An EventBridge event as delivered to an SQS target (no input transformer)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    version: str = "0"
    id: str = Field(min_length=1, max_length=256)
    detail_type: str = Field(alias="detail-type", min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    account: str | None = None
    time: datetime | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any]


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = Field(min_length=1, max_length=255)


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    key: str = Field(min_length=1, max_length=4096)
    key_not_utf8: bool = Field(
        default=False,
        exclude=True,
        description="the key held lone surrogates (not UTF-8); ``key`` then shows them escaped",
    )
    size: int | None = Field(default=None, ge=0)
    etag: str | None = Field(default=None, validation_alias=AliasChoices("etag", "eTag"))
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _escape_non_utf8_key(cls, data: Any) -> Any:
        # JSON can carry lone surrogates (\udcff) that no S3 key or UTF-8 text has;
        # keep the event so the consumer can reject it with a reason.
        if isinstance(data, dict) and isinstance(data.get("key"), str):
            try:
                data["key"].encode("utf-8")
            except UnicodeEncodeError:
                escaped = data["key"].encode("utf-8", "backslashreplace").decode("utf-8")
                return data | {"key": escaped, "key_not_utf8": True}
        return data


class S3ObjectCreatedDetail(BaseModel):
    """``detail`` of S3's ``Object Created`` event on EventBridge."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    version: str = "0"
    bucket: S3Bucket
    object: S3Object
    request_id: str | None = Field(default=None, alias="request-id")
    reason: str | None = None


class S3ObjectCreated(BaseModel):
    """An ``Object Created`` event: the envelope plus its parsed detail."""

    model_config = ConfigDict(frozen=True)

    envelope: EventBridgeEnvelope
    detail: S3ObjectCreatedDetail

    @property
    def event_id(self) -> str:
        return self.envelope.id


def _load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(f"message body is not JSON: {exc.msg} at {exc.pos}") from exc


def parse_envelope(body: str) -> EventBridgeEnvelope:
    try:
        return EventBridgeEnvelope.model_validate(_load_json(body))
    except ValidationError as exc:
        raise InvalidMessageError(f"message body is not an EventBridge event: {exc}") from exc


def parse_s3_object_created(body: str) -> S3ObjectCreated:
    envelope = parse_envelope(body)
    if envelope.source != "aws.s3" or envelope.detail_type != "Object Created":
        raise InvalidMessageError(
            f"expected an aws.s3 'Object Created' event, got {envelope.source!r} "
            f"{envelope.detail_type!r}; check the EventBridge rule that feeds this queue"
        )
    try:
        detail = S3ObjectCreatedDetail.model_validate(envelope.detail)
    except ValidationError as exc:
        raise InvalidMessageError(f"invalid 'Object Created' detail: {exc}") from exc
    return S3ObjectCreated(envelope=envelope, detail=detail)


class CatalogEvent(BaseModel):
    """One of our own events: the envelope plus the catalog model of its detail."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    envelope: EventBridgeEnvelope
    event: Event

    @property
    def event_id(self) -> str:
        return self.event.event_id


def parse_catalog_event(body: str, accept: tuple[type[Event], ...] = ()) -> CatalogEvent:
    envelope = parse_envelope(body)
    try:
        event = parse_event(envelope.detail_type, envelope.detail)
    except ValueError as exc:
        raise InvalidMessageError(str(exc)) from exc
    if accept and not isinstance(event, accept):
        names = ", ".join(m.__name__ for m in accept)
        raise InvalidMessageError(
            f"this queue takes {names}, not {envelope.detail_type}; check the EventBridge rule"
        )
    return CatalogEvent(envelope=envelope, event=event)
