"""Model versions of a project: rows ``model#<version>`` in the projects table.

A version is named after the dataset it is trained on, so one dataset never
gets two versions, however often its ``DatasetReady`` arrives. ``brandlens
train PROJECT --again`` asks for another version of a dataset on purpose; that
version is named after the dataset and the request (:func:`retrain_version_name`),
so a redelivered request finds the version it started instead of making a third.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from brandlens_core.events import LabelMetrics, utc_now
from brandlens_core.projects import ConflictError, ProjectStore


class ModelStatus(StrEnum):
    TRAINING = "TRAINING"
    TRAINED = "TRAINED"
    FAILED = "FAILED"


class ModelVersion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project: str
    version: str
    dataset_id: str
    status: ModelStatus = ModelStatus.TRAINING
    project_arn: str | None = None
    version_arn: str | None = None
    service_status: str | None = Field(default=None, description="as Rekognition reports it")
    reason: str | None = None
    warning: str | None = Field(
        default=None,
        description="what the service said of a completed training beyond 'ready' "
        "(the model-server: training hit its time limit before its step budget)",
    )
    f1_score: float | None = None
    labels: dict[str, LabelMetrics] = Field(default_factory=dict)
    evaluation_summary_uri: str | None = None
    request_id: str | None = Field(
        default=None, description="the `brandlens train --again` request that made this version"
    )
    promoted: bool | None = None
    promotion_note: str | None = None
    promoted_at: datetime | None = Field(
        default=None, description="when it became the project's current version"
    )
    poll_seq: int = 0
    progress: float | None = Field(
        default=None, description="0-1, as the service last said (the model-server does)"
    )
    progress_seen: float | None = Field(
        default=None, description="the last progress seen to change, for a rate"
    )
    progress_seen_at: datetime | None = None
    expected_end_at: datetime | None = Field(
        default=None, description="when training should end, predicted from its progress"
    )
    next_look_at: datetime | None = Field(
        default=None, description="when the trainer looks at the training version next"
    )
    published: set[str] = Field(default_factory=set)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    trained_at: datetime | None = None

    @property
    def item(self) -> str:
        return model_item(self.version)


def model_item(version: str) -> str:
    return f"model#{version}"


def version_name(dataset_id: str) -> str:
    """Rekognition version names: [a-zA-Z0-9_.-]{1,255}; the dataset id already is one."""
    return dataset_id


def retrain_version_name(dataset_id: str, request_id: str) -> str:
    """Another version of ``dataset_id`` for one retrain request: ``<dataset>.again-<hash>``.

    The same request (a redelivered message) always gives the same name.
    """
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:12]
    return f"{dataset_id}.again-{digest}"


class ModelStore:
    def __init__(self, projects: ProjectStore) -> None:
        self.projects = projects

    async def create(self, model: ModelVersion) -> tuple[ModelVersion, bool]:
        data = model.model_dump(mode="json", exclude={"published"})
        try:
            await self.projects.put_new(model.project, model.item, data)
        except ConflictError:
            existing = await self.get(model.project, model.version)
            if existing is None:
                raise
            return existing, False
        return model, True

    async def get(self, project: str, version: str) -> ModelVersion | None:
        row = await self.projects.get(project, model_item(version))
        return None if row is None else ModelVersion.model_validate(row)

    async def all(self, project: str) -> list[ModelVersion]:
        rows = await self.projects.query(project, "model#")
        return sorted((ModelVersion.model_validate(r) for r in rows), key=lambda m: m.created_at)

    async def update(
        self, model: ModelVersion, fields: dict[str, Any], *, expect: ModelStatus | None = None
    ) -> ModelVersion:
        fields = dict(fields) | {"updated_at": utc_now().isoformat()}
        row = await self.projects.update(
            model.project, model.item, fields, when={"status": (expect or model.status).value}
        )
        return ModelVersion.model_validate(row)

    async def mark_published(self, model: ModelVersion, detail_type: str) -> None:
        await self.projects.update(
            model.project, model.item, {}, add_to_set={"published": detail_type}
        )
