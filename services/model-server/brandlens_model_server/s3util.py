"""Small S3 helpers: URIs, existence checks, reading bounded objects, downloading prefixes."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from brandlens_core.aws import Client, error_code

NOT_FOUND_CODES = frozenset(
    {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "403", "AccessDenied", "NotFound"}
)


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


async def object_exists(s3: Client, bucket: str, key: str, version: str | None = None) -> bool:
    kwargs = {"Bucket": bucket, "Key": key}
    if version:
        kwargs["VersionId"] = version
    try:
        await s3.head_object(**kwargs)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES or error_code(exc) == "400":
            return False
        raise
    return True


async def bucket_exists(s3: Client, bucket: str) -> bool:
    try:
        await s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES or error_code(exc) == "400":
            return False
        raise
    return True


async def prefix_has_objects(s3: Client, bucket: str, prefix: str) -> bool:
    response = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return bool(response.get("Contents"))


async def download_prefix(s3: Client, bucket: str, prefix: str, target: Path) -> int:
    """Every object under ``prefix`` into ``target``, keeping relative paths. Returns the count."""
    count = 0
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key: str = obj["Key"]
            relative = PurePosixPath(key[len(prefix) :])
            if not relative.parts or key.endswith("/") or ".." in relative.parts:
                continue
            destination = target.joinpath(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            response = await s3.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                with destination.open("wb") as out:
                    while chunk := await stream.read(1024 * 1024):
                        out.write(chunk)
            count += 1
    return count
