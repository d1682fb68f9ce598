"""Uploads: PutObject for small files, 8 MiB multipart parts above, aborted on failure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from brandlens_cli.main import PART_SIZE, upload_file


class FakeS3:
    def __init__(self, fail_on_part: int | None = None, cancel_on_part: int | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_on_part = fail_on_part
        self.cancel_on_part = cancel_on_part

    async def put_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("put_object", kw))
        return {"ETag": '"abc"', "VersionId": "v-put"}

    async def create_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("create_multipart_upload", kw))
        return {"UploadId": "up-1"}

    async def upload_part(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("upload_part", kw))
        if kw["PartNumber"] == self.fail_on_part:
            raise ConnectionError("network down")
        if kw["PartNumber"] == self.cancel_on_part:
            raise asyncio.CancelledError
        return {"ETag": f'"etag-{kw["PartNumber"]}"'}

    async def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("complete_multipart_upload", kw))
        return {"ETag": '"multi-3"', "VersionId": "v-multi"}

    async def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("abort_multipart_upload", kw))
        return {}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def sized_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes((bytes(range(251)) * (size // 251 + 1))[:size])
    return path


async def test_a_file_up_to_8_mib_is_one_put_object(tmp_path: Path) -> None:
    s3, progress = FakeS3(), []
    path = sized_file(tmp_path, PART_SIZE)
    uploaded = await upload_file(s3, "b", "analysis/p/clip.mp4", path, on_progress=progress.append)
    assert s3.names() == ["put_object"]
    kw = s3.calls[0][1]
    assert (kw["Bucket"], kw["Key"], kw["ContentType"]) == ("b", "analysis/p/clip.mp4", "video/mp4")
    assert kw["Body"] == path.read_bytes()
    assert (uploaded.version_id, uploaded.etag, uploaded.size) == ("v-put", "abc", PART_SIZE)
    assert sum(progress) == PART_SIZE


async def test_a_larger_file_goes_in_8_mib_parts(tmp_path: Path) -> None:
    s3, progress = FakeS3(), []
    size = 2 * PART_SIZE + 123
    path = sized_file(tmp_path, size)
    uploaded = await upload_file(s3, "b", "k", path, on_progress=progress.append)
    assert s3.names() == [
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "upload_part",
        "complete_multipart_upload",
    ]
    parts = [kw for name, kw in s3.calls if name == "upload_part"]
    assert [len(p["Body"]) for p in parts] == [PART_SIZE, PART_SIZE, 123]
    assert b"".join(p["Body"] for p in parts) == path.read_bytes()
    assert all(p["UploadId"] == "up-1" for p in parts)
    complete = s3.calls[-1][1]
    assert complete["MultipartUpload"]["Parts"] == [
        {"ETag": f'"etag-{n}"', "PartNumber": n} for n in (1, 2, 3)
    ]
    assert uploaded.version_id == "v-multi"
    assert progress == [PART_SIZE, PART_SIZE, 123]


async def test_a_failed_part_aborts_the_upload(tmp_path: Path) -> None:
    s3 = FakeS3(fail_on_part=2)
    path = sized_file(tmp_path, 2 * PART_SIZE + 1)
    with pytest.raises(ConnectionError):
        await upload_file(s3, "b", "k", path)
    assert s3.names()[-1] == "abort_multipart_upload"
    assert s3.calls[-1][1] == {"Bucket": "b", "Key": "k", "UploadId": "up-1"}
    assert "complete_multipart_upload" not in s3.names()


async def test_a_cancelled_upload_is_aborted(tmp_path: Path) -> None:
    s3 = FakeS3(cancel_on_part=1)
    path = sized_file(tmp_path, PART_SIZE + 1)
    with pytest.raises(asyncio.CancelledError):
        await upload_file(s3, "b", "k", path)
    assert s3.names()[-1] == "abort_multipart_upload"
