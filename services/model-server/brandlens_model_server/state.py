"""The server's state as JSON objects in S3, written through on every change.

Layout under ``s3://<state bucket>/<state prefix>`` (default
``model-server/state/``), one object per record at a deterministic key::

    projects/<project>/project.json
    projects/<project>/versions/<version>.json

One server process owns a prefix, so there is no optimistic concurrency.
Writes of one key are serialised and each takes its snapshot of the record
inside the key's lock, so the last write to land is always the latest state.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

from brandlens_core.aws import Client, error_code
from brandlens_core.logging import get_logger
from brandlens_model_server.records import ProjectRecord, VersionRecord

log = get_logger(__name__)


class StateStore:
    def __init__(self, s3: Client, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def project_key(self, project: str) -> str:
        return f"{self.prefix}projects/{project}/project.json"

    def version_key(self, project: str, version: str) -> str:
        return f"{self.prefix}projects/{project}/versions/{version}.json"

    async def check_bucket(self) -> None:
        try:
            await self.s3.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise RuntimeError(
                f"state bucket {self.bucket!r} is not reachable ({error_code(exc) or exc}); "
                "create it (deploy the stack) or set BRANDLENS_MODEL_SERVER_STATE_BUCKET"
            ) from exc

    async def load(self) -> tuple[list[ProjectRecord], list[VersionRecord]]:
        projects: list[ProjectRecord] = []
        versions: list[VersionRecord] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}projects/"):
            for obj in page.get("Contents", []):
                key: str = obj["Key"]
                body = await self._get(key)
                if body is None:
                    continue
                if key.endswith("/project.json"):
                    projects.append(ProjectRecord.model_validate(body))
                elif "/versions/" in key and key.endswith(".json"):
                    versions.append(VersionRecord.model_validate(body))
        return projects, versions

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            response = await self.s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None  # deleted between list and get
            raise
        async with response["Body"] as stream:
            data = await stream.read()
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError(f"state object {key} is not a JSON object")
        return value

    async def put_project(self, record: ProjectRecord) -> None:
        await self._put(self.project_key(record.name), record)

    async def put_version(self, record: VersionRecord) -> None:
        await self._put(self.version_key(record.project, record.version), record)

    async def delete_project(self, project: str) -> None:
        await self._delete(self.project_key(project))

    async def delete_version(self, project: str, version: str) -> None:
        await self._delete(self.version_key(project, version))

    async def _put(self, key: str, record: ProjectRecord | VersionRecord) -> None:
        async with self._locks[key]:
            body = record.model_dump_json(indent=2).encode()
            await self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )

    async def _delete(self, key: str) -> None:
        async with self._locks[key]:
            await self.s3.delete_object(Bucket=self.bucket, Key=key)
