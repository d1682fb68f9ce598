"""Helpers for the model-server tests (no tests here).

The server always runs as its own process on loopback, pointed at the moto
server, and is spoken to over HTTP by botocore (aiobotocore and boto3) and
the AWS CLI. Until the real detector is trained in a test, two tiny
stand-ins, written to a temp dir as real Python modules, speak the real
contracts of ../../services/model-server/CONTRACT.md:

- ``fake_trainer`` (§1): run as ``python -m fake_trainer --spec SPEC.json`` by
  the server; its behaviour is chosen by a ``fake-trainer`` key in the first
  line of the training manifest (``complete``, ``fail``, ``crash``, ``wait``, and
  ``steady``: progress from 0.1 to 1.0 at an even rate over ``seconds``, with steps).
- ``fake_runtime`` (§2): ``Detector.load(dir)`` reads ``meta.json``; ``detect``
  decodes the image with Pillow and boxes its pure red pixels.
"""

from __future__ import annotations

import io
import json
import os
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from PIL import Image

from brandlens_cli.embedded import LOCAL_CREDENTIALS
from brandlens_model_server.launcher import ModelServerProcess
from tests.support import Stack, eventually

REPO = Path(__file__).resolve().parents[2]
MODEL_SERVER_SRC = REPO / "services" / "model-server"

FAKE_TRAINER = textwrap.dedent(
    '''
    """A stand-in training process speaking CONTRACT.md section 1."""
    import argparse, json, os, signal, sys, time

    import boto3

    def emit(line):
        print(json.dumps(line), flush=True)

    def s3():
        return boto3.client(
            "s3",
            endpoint_url=os.environ.get("BRANDLENS_AWS_ENDPOINT_URL"),
            region_name=os.environ.get("BRANDLENS_AWS_REGION", "us-east-1"),
        )

    def split(uri):
        bucket, _, key = uri[len("s3://"):].partition("/")
        return bucket, key

    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--spec", required=True)
        spec = json.load(open(parser.parse_args().spec))
        client = s3()
        bucket, key = split(spec["train_manifest_uri"])
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        directive = lines[0].get("fake-trainer", {}) if lines else {}
        mode = directive.get("mode", "complete")
        marker_dir = directive.get("marker_dir")
        name = spec["output_uri"].rstrip("/").rsplit("/", 1)[-1]
        if marker_dir:
            with open(os.path.join(marker_dir, name + ".pid"), "w") as f:
                f.write(str(os.getpid()))
            with open(os.path.join(marker_dir, name + ".spec.json"), "w") as f:
                json.dump(spec, f)

        def on_term(signum, frame):
            if marker_dir:
                open(os.path.join(marker_dir, name + ".sigterm"), "w").close()
            sys.exit(143)

        signal.signal(signal.SIGTERM, on_term)
        parent = os.getppid()
        emit({"progress": 0.1, "epoch": 1, "message": "reading the manifest"})
        print("not a json line", flush=True)
        if mode == "fail":
            emit({"result": "TRAINING_FAILED",
                  "message": "no image has a labelled box: label at least one logo"})
            return 2
        if mode == "crash":
            print("Traceback (most recent call last):", file=sys.stderr)
            print("RuntimeError: CUDA out of memory", file=sys.stderr)
            return 1
        if mode == "steady":  # an even rate: the server can predict the end
            seconds, began = float(directive["seconds"]), time.monotonic()
            while (elapsed := time.monotonic() - began) < seconds:
                if os.getppid() != parent:
                    return 1
                fraction = 0.1 + 0.9 * elapsed / seconds
                emit({"progress": fraction, "steps": int(fraction * 1000), "max_steps": 1000})
                time.sleep(0.2)
        else:
            emit({"progress": 0.42, "epoch": 3, "val_map50": 0.81})
        if mode == "wait":
            release = directive["release_key"]
            while True:
                if os.getppid() != parent:  # the server died: do not outlive it
                    return 1
                try:
                    client.head_object(Bucket=bucket, Key=release)
                    break
                except Exception:
                    time.sleep(0.1)
        out_bucket, prefix = split(spec["output_uri"])
        labels = sorted({
            name
            for line in lines
            for key, value in line.items()
            if key.endswith("-metadata") and isinstance(value, dict)
            for name in value.get("class-map", {}).values()
        }) or ["logo"]
        meta = {"labels": labels, "threshold": 50.0, "architecture": "fake",
                "sleep_seconds": directive.get("sleep_seconds", 0)}
        client.put_object(Bucket=out_bucket, Key=prefix + "model/meta.json",
                          Body=json.dumps(meta).encode())
        client.put_object(Bucket=out_bucket, Key=prefix + "model/model.pt", Body=b"weights")
        summary = {"Version": 1,
                   "AggregatedEvaluationResults": {"F1Score": 0.9, "Precision": 0.9,
                                                   "Recall": 0.9, "mAP50": 0.9},
                   "LabelEvaluationResults": [], "EvaluationDetails": {}}
        client.put_object(Bucket=out_bucket, Key=prefix + "evaluation/summary.json",
                          Body=json.dumps(summary).encode())
        for which in ("train", "test"):
            client.put_object(Bucket=out_bucket, Key=prefix + f"manifests/{which}.manifest",
                              Body=body.encode())
        emit({"progress": 1.0, "epoch": 5})
        emit({"result": "TRAINING_COMPLETED", "f1": 0.9})
        return 0

    sys.exit(main())
    '''
)

FAKE_RUNTIME = textwrap.dedent(
    '''
    """A stand-in runtime speaking CONTRACT.md section 2: boxes the pure red pixels."""
    import io, json, time
    from pathlib import Path

    from PIL import Image, ImageChops, UnidentifiedImageError


    class InvalidImageError(ValueError):
        pass


    class Detector:
        def __init__(self, meta):
            self.labels = list(meta["labels"])
            self.threshold = float(meta["threshold"])
            self.sleep_seconds = float(meta.get("sleep_seconds", 0))

        @classmethod
        def load(cls, directory):
            return cls(json.loads((Path(directory) / "meta.json").read_text()))

        def detect(self, image_bytes, min_confidence=None, max_results=None):
            try:
                img = Image.open(io.BytesIO(image_bytes))
                img.load()
            except (UnidentifiedImageError, OSError) as exc:
                raise InvalidImageError(str(exc)) from exc
            if self.sleep_seconds:
                time.sleep(self.sleep_seconds)
            rgb = img.convert("RGB")
            r, g, b = rgb.split()
            red = r.point(lambda v: 255 if v > 200 else 0)
            not_green = g.point(lambda v: 255 if v < 60 else 0)
            not_blue = b.point(lambda v: 255 if v < 60 else 0)
            mask = ImageChops.multiply(ImageChops.multiply(red, not_green), not_blue)
            w, h = rgb.size
            found = []
            box = mask.getbbox()
            if box:
                left, top, right, bottom = box
                found.append({"Name": self.labels[0], "Confidence": 95.0, "Geometry": {
                    "BoundingBox": {"Width": (right - left) / w, "Height": (bottom - top) / h,
                                    "Left": left / w, "Top": top / h}}})
            found.append({"Name": self.labels[0], "Confidence": 12.5, "Geometry": {
                "BoundingBox": {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}}})
            floor = self.threshold if min_confidence is None else min_confidence
            found = [f for f in found if f["Confidence"] >= floor]
            return found if max_results is None else found[:max_results]
    '''
)


def write_fakes(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fake_trainer.py").write_text(FAKE_TRAINER)
    (directory / "fake_runtime.py").write_text(FAKE_RUNTIME)
    return directory


def png_with_red_square(
    size: tuple[int, int] = (200, 100), box: tuple[int, int, int, int] = (20, 10, 60, 50)
) -> bytes:
    """A grey PNG with a pure red rectangle at ``box`` (left, top, right, bottom, exclusive)."""
    img = Image.new("RGB", size, (120, 120, 120))
    img.paste((255, 0, 0), box)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def manifest_lines(
    bucket: str, images: list[str], directive: dict[str, Any] | None = None
) -> bytes:
    """A Ground Truth bounding-box output manifest over ``images`` (keys in ``bucket``)."""
    lines = []
    for i, key in enumerate(images):
        line: dict[str, Any] = {
            "source-ref": f"s3://{bucket}/{key}",
            "bounding-box": {
                "image_size": [{"width": 200, "height": 100, "depth": 3}],
                "annotations": [{"class_id": 0, "left": 20, "top": 10, "width": 40, "height": 40}],
            },
            "bounding-box-metadata": {
                "objects": [{"confidence": 1}],
                "class-map": {"0": "acme"},
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": "2026-11-21T10:00:00",
                "job-name": "labeling-job/acme-1",
            },
        }
        if i == 0 and directive is not None:
            line["fake-trainer"] = directive
        lines.append(json.dumps(line))
    return ("\n".join(lines) + "\n").encode()


@dataclass
class ModelServerHarness:
    """Starts model-server processes on one stack and state; builds clients for them."""

    stack: Stack
    tmp_path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    servers: list[ModelServerProcess] = field(default_factory=list)

    @property
    def fakes_dir(self) -> Path:
        return self.tmp_path / "fakes"

    @property
    def markers(self) -> Path:
        path = self.tmp_path / "markers"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, **overrides: str) -> dict[str, str]:
        write_fakes(self.fakes_dir)
        python_path = os.pathsep.join(
            [str(MODEL_SERVER_SRC), str(self.fakes_dir), os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        return (
            self.stack.env()
            | {
                "PYTHONPATH": python_path,
                "BRANDLENS_MODEL_SERVER_CACHE_DIR": str(self.tmp_path / "cache"),
                "BRANDLENS_MODEL_SERVER_TRAINING_MODULE": "fake_trainer",
                "BRANDLENS_MODEL_SERVER_RUNTIME_MODULE": "fake_runtime",
                "BRANDLENS_MODEL_SERVER_TRAINING_STOP_GRACE_SECONDS": "5",
                "BRANDLENS_MODEL_SERVER_SHUTDOWN_GRACE_SECONDS": "5",
            }
            | self.overrides
            | overrides
        )

    async def start(self, **overrides: str) -> ModelServerProcess:
        n = len(self.servers) + 1
        server = ModelServerProcess(
            env=self.env(**overrides), log_path=self.tmp_path / f"model-server-{n}.log"
        )
        self.servers.append(server)
        await server.start()
        return server

    async def stop_all(self) -> None:
        for server in self.servers:
            await server.stop(timeout_seconds=30)

    def log_text(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("model-server-*.log"))
        )


@asynccontextmanager
async def rekognition(
    server: ModelServerProcess, *, max_attempts: int = 1, validate: bool = True
) -> AsyncIterator[Any]:
    """An aiobotocore Rekognition client pointed at ``server``."""
    session = get_session()
    config = AioConfig(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        parameter_validation=validate,
    )
    async with session.create_client(
        "rekognition",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    ) as client:
        yield client


def boto3_rekognition(server: ModelServerProcess, *, max_attempts: int = 3) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "rekognition",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def put_dataset(
    stack: Stack, directive: dict[str, Any] | None = None, images: int = 2
) -> dict[str, Any]:
    """Images and a train/test manifest in the media bucket; returns CreateProjectVersion args."""
    s3 = stack.clients.s3
    bucket = stack.names.media_bucket
    root = unique("training/acme")
    keys = []
    for i in range(images):
        key = f"{root}/img-{i}.png"
        await s3.put_object(Bucket=bucket, Key=key, Body=png_with_red_square())
        keys.append(key)
    train_key = f"{root}/train.manifest"
    test_key = f"{root}/test.manifest"
    await s3.put_object(Bucket=bucket, Key=train_key, Body=manifest_lines(bucket, keys, directive))
    await s3.put_object(Bucket=bucket, Key=test_key, Body=manifest_lines(bucket, keys[:1]))
    return {
        "OutputConfig": {"S3Bucket": stack.names.artifacts_bucket, "S3KeyPrefix": "models"},
        "TrainingData": {
            "Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": train_key}}}]
        },
        "TestingData": {
            "Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": test_key}}}]
        },
    }


async def version_status(client: Any, project_arn: str, version: str) -> dict[str, Any]:
    r = await client.describe_project_versions(ProjectArn=project_arn, VersionNames=[version])
    [description] = r["ProjectVersionDescriptions"]
    return dict(description)


async def wait_status(
    client: Any, project_arn: str, version: str, *statuses: str, timeout: float = 60
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        d = await version_status(client, project_arn, version)
        return d if d["Status"] in statuses else None

    found = await eventually(probe, timeout=timeout, interval=0.1, message=f"{version} {statuses}")
    assert found is not None
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def train(
    client: Any,
    stack: Stack,
    *,
    directive: dict[str, Any] | None = None,
    project_arn: str | None = None,
    wait: bool = True,
) -> tuple[str, str, str]:
    """A project (new unless given) and a version trained by the fake trainer.

    Returns (project ARN, version ARN, version name); waits for TRAINING_COMPLETED if ``wait``.
    """
    if project_arn is None:
        project_arn = (await client.create_project(ProjectName=unique("acme")))["ProjectArn"]
    name = unique("v")
    dataset = await put_dataset(stack, directive)
    created = await client.create_project_version(
        ProjectArn=project_arn, VersionName=name, **dataset
    )
    if wait:
        await wait_status(client, project_arn, name, "TRAINING_COMPLETED")
    return project_arn, created["ProjectVersionArn"], name
