"""Uploads: PutObject for small files, 8 MiB multipart parts above, aborted on failure.

The CLI's S3 client talks to the moto server through a loopback proxy, which
notes every request it passes on and can break or hold one UploadPart; the
outcome is then read from the bucket itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from brandlens_cli.main import PART_SIZE, upload_file
from brandlens_core.aws import AwsClients, Client, error_code
from brandlens_core.settings import AwsSettings
from tests.support import HoldingProxy, Stack

pytestmark = pytest.mark.integration

KEY = "analysis/acme/clip.mp4"
INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>"
)


@dataclass(frozen=True)
class Sent:
    """One S3 request the CLI sent, named as the S3 API names it."""

    operation: str
    part_number: int | None
    size: int


def operation_of(request: Any) -> str:
    query = request.query
    if request.method == "PUT":
        return "UploadPart" if "partNumber" in query else "PutObject"
    if request.method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    if request.method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    return f"{request.method} {request.path_qs}"


@dataclass
class S3Link:
    """The CLI's S3 client and the proxy between it and moto."""

    s3: Client
    proxy: HoldingProxy
    sent: list[Sent] = field(default_factory=list)
    fail_part: int | None = None  # answer this UploadPart with a 500, every time
    hold_part: int | None = None  # never answer this UploadPart

    def operations(self) -> list[str]:
        return [s.operation for s in self.sent]

    def parts(self) -> list[Sent]:
        return [s for s in self.sent if s.operation == "UploadPart"]


def _part_number(request: Any) -> int | None:
    if request.method != "PUT" or "partNumber" not in request.query:
        return None
    return int(request.query["partNumber"])


@pytest.fixture
async def link(stack: Stack) -> AsyncIterator[S3Link]:
    holder: list[S3Link] = []

    async def intercept(request: Any) -> web.Response | None:
        this = holder[0]
        body = await request.read()
        number = _part_number(request)
        this.sent.append(Sent(operation_of(request), number, len(body)))
        if number is not None and number == this.fail_part:
            return web.Response(status=500, body=INTERNAL_ERROR, content_type="application/xml")
        return None

    def hold_when(request: Any) -> bool:
        number = _part_number(request)
        return number is not None and number == holder[0].hold_part

    proxy = HoldingProxy(stack.endpoint_url, intercept=intercept, hold_when=hold_when)
    await proxy.start()
    # Few attempts per call, so an injected 500 soon is the failure the CLI sees.
    settings = AwsSettings(endpoint_url=proxy.url, max_attempts=1)
    try:
        async with AwsClients(settings, services=("s3",)) as clients:
            holder.append(S3Link(s3=clients.s3, proxy=proxy))
            yield holder[0]
    finally:
        await proxy.stop()


def sized_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes((bytes(range(251)) * (size // 251 + 1))[:size])
    return path


async def stored(stack: Stack, key: str = KEY) -> tuple[dict[str, Any], bytes]:
    """The object's metadata and content, read from moto directly."""
    got = await stack.clients.s3.get_object(Bucket=stack.names.media_bucket, Key=key)
    async with got["Body"] as body:
        return got, await body.read()


async def stored_parts(stack: Stack, key: str = KEY) -> list[int]:
    """The part numbers moto holds for the one unfinished multipart upload of the key."""
    s3, bucket = stack.clients.s3, stack.names.media_bucket
    (upload,) = (await s3.list_multipart_uploads(Bucket=bucket, Prefix=key))["Uploads"]
    parts = await s3.list_parts(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
    return [p["PartNumber"] for p in parts.get("Parts", [])]


async def nothing_left_behind(stack: Stack, key: str = KEY) -> None:
    """No unfinished multipart upload, and no version (or delete marker) of the key."""
    s3, bucket = stack.clients.s3, stack.names.media_bucket
    uploads = await s3.list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []
    versions = await s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert versions.get("Versions", []) == []
    assert versions.get("DeleteMarkers", []) == []


async def test_a_file_up_to_8_mib_is_one_put_object(
    stack: Stack, link: S3Link, tmp_path: Path
) -> None:
    # given a file of exactly one part
    path, progress = sized_file(tmp_path, PART_SIZE), list[int]()
    # when it is uploaded
    uploaded = await upload_file(
        link.s3, stack.names.media_bucket, KEY, path, on_progress=progress.append
    )
    # then it went up as one PutObject
    assert link.operations() == ["PutObject"]
    assert link.sent[0].size == PART_SIZE
    # and the bucket holds it, typed by its name, as the version the CLI reports
    head, content = await stored(stack)
    assert content == path.read_bytes()
    assert head["ContentType"] == "video/mp4"
    assert "-" not in head["ETag"]  # a single-part ETag
    assert uploaded.bucket == stack.names.media_bucket
    assert (uploaded.key, uploaded.size) == (KEY, PART_SIZE)
    assert uploaded.version_id == head["VersionId"]
    assert uploaded.etag == head["ETag"].strip('"')
    assert sum(progress) == PART_SIZE


async def test_a_larger_file_goes_in_8_mib_parts(
    stack: Stack, link: S3Link, tmp_path: Path
) -> None:
    # given a file of two full parts and a bit
    size = 2 * PART_SIZE + 123
    path, progress = sized_file(tmp_path, size), list[int]()
    # when it is uploaded
    uploaded = await upload_file(
        link.s3, stack.names.media_bucket, KEY, path, on_progress=progress.append
    )
    # then it went up in three parts, in order, and the upload was completed
    assert link.operations() == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    assert [(p.part_number, p.size) for p in link.parts()] == [
        (1, PART_SIZE),
        (2, PART_SIZE),
        (3, 123),
    ]
    # and the bucket holds the whole file as one object made of three parts
    head, content = await stored(stack)
    assert content == path.read_bytes()
    assert head["ContentType"] == "video/mp4"
    assert head["ETag"].strip('"').endswith("-3")
    assert uploaded.version_id == head["VersionId"]
    assert uploaded.etag == head["ETag"].strip('"')
    assert uploaded.size == size
    assert progress == [PART_SIZE, PART_SIZE, 123]


async def test_a_failed_part_aborts_the_upload(stack: Stack, link: S3Link, tmp_path: Path) -> None:
    # given S3 answers the second part with a 500
    link.fail_part = 2
    path = sized_file(tmp_path, 2 * PART_SIZE + 1)
    # when the file is uploaded, the error reaches the caller
    with pytest.raises(ClientError) as info:
        await upload_file(link.s3, stack.names.media_bucket, KEY, path)
    assert error_code(info.value) == "InternalError"
    # then no part after it was sent, and the upload was aborted, not completed
    operations = link.operations()
    assert operations[0] == "CreateMultipartUpload"
    assert operations[-1] == "AbortMultipartUpload"
    assert "CompleteMultipartUpload" not in operations
    assert {p.part_number for p in link.parts()} == {1, 2}  # part 2 as often as it was retried
    # and neither its parts nor an object are left in the bucket
    await nothing_left_behind(stack)


async def test_a_cancelled_upload_is_aborted(stack: Stack, link: S3Link, tmp_path: Path) -> None:
    # given an upload whose first part is stored and whose second part hangs
    link.hold_part = 2
    path = sized_file(tmp_path, 2 * PART_SIZE + 1)
    uploading = asyncio.create_task(upload_file(link.s3, stack.names.media_bucket, KEY, path))
    await asyncio.wait_for(link.proxy.held.wait(), 30)
    assert await stored_parts(stack) == [1]
    # when it is cancelled (Ctrl-C)
    uploading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await uploading
    # then the upload was aborted, not completed
    assert link.operations() == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "AbortMultipartUpload",
    ]
    # and neither the stored part nor an object is left in the bucket
    await nothing_left_behind(stack)
