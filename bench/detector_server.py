"""The model-server's overhead: DetectCustomLabels over HTTP against the bare model call.

Starts a moto server and the model-server on loopback, trains a version
through CreateProjectVersion (a short budget: the overhead does not depend
on accuracy), starts it with enough inference units that throttling never
interferes, then sends the same held-out 1280x720 JPEG frames one at a time
through DetectCustomLabels (Image.Bytes) and through ``Detector.detect`` on
the same downloaded model, in the same run. Prints both and the overhead;
writes bench/results/detector_server.json.

Run ``bench/detector.py`` first: it makes the cached synthetic frames.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "detector"
RESULTS = ROOT / "results" / "detector_server.json"


async def run(args: argparse.Namespace) -> dict[str, object]:
    from PIL import Image

    from brandlens_cli.embedded import LOCAL_CREDENTIALS, MotoServer, service_env
    from brandlens_core.aws import AwsClients
    from brandlens_core.settings import AwsSettings
    from brandlens_core.stack import StackNames, define, deploy
    from brandlens_model_server.detector.runtime import Detector
    from brandlens_model_server.launcher import ModelServerProcess

    train_dir = next(CACHE.glob("train-*"), None)
    test_dir = next(CACHE.glob("test-*"), None)
    if train_dir is None or test_dir is None:
        raise SystemExit("run bench/detector.py first (it generates the cached frames)")
    os.environ.update(LOCAL_CREDENTIALS | {"AWS_DEFAULT_REGION": "us-east-1"})
    moto = MotoServer()
    moto.start()
    stack = "bench" + uuid.uuid4().hex[:8]
    names = StackNames(stack)
    work = Path(tempfile.mkdtemp(prefix="brandlens-bench-server-"))
    server = ModelServerProcess(
        env=service_env(moto.endpoint_url, stack)
        | {
            "BRANDLENS_MODEL_SERVER_MAX_TRAINING_STEPS": str(args.train_steps),
            "BRANDLENS_MODEL_SERVER_CACHE_DIR": str(work / "cache"),
            "BRANDLENS_LOG_LEVEL": "WARNING",
        },
        log_path=work / "model-server.log",
    )
    settings = AwsSettings(endpoint_url=moto.endpoint_url)  # type: ignore[arg-type]
    try:
        async with AwsClients(settings, services=("s3", "sqs", "events", "dynamodb")) as aws:
            await deploy(aws, define(names))
            bucket = names.media_bucket
            lines = []
            samples = [
                json.loads(x) for x in (train_dir / "samples.jsonl").read_text().splitlines()
            ]
            manifest = [
                json.loads(x) for x in (train_dir / "manifest.jsonl").read_text().splitlines()
            ]
            for sample, line in list(zip(samples, manifest, strict=True))[: args.train_images]:
                key = f"training/bench/{sample['file']}"
                await aws.s3.put_object(
                    Bucket=bucket, Key=key, Body=(train_dir / sample["file"]).read_bytes()
                )
                line["source-ref"] = f"s3://{bucket}/{key}"
                lines.append(json.dumps(line))
            await aws.s3.put_object(
                Bucket=bucket,
                Key="training/bench/train.manifest",
                Body=("\n".join(lines) + "\n").encode(),
            )
        await server.start()
        rek_settings = AwsSettings(
            rekognition_endpoint_url=server.endpoint_url, endpoint_url=moto.endpoint_url
        )  # type: ignore[arg-type]
        async with AwsClients(rek_settings, services=("rekognition", "s3")) as aws:
            rek = aws.get("rekognition")
            project = (await rek.create_project(ProjectName="bench"))["ProjectArn"]
            version = (
                await rek.create_project_version(
                    ProjectArn=project,
                    VersionName="v1",
                    OutputConfig={"S3Bucket": names.artifacts_bucket, "S3KeyPrefix": "models"},
                    TrainingData={
                        "Assets": [
                            {
                                "GroundTruthManifest": {
                                    "S3Object": {
                                        "Bucket": names.media_bucket,
                                        "Name": "training/bench/train.manifest",
                                    }
                                }
                            }
                        ]
                    },
                    TestingData={"AutoCreate": True},
                )
            )["ProjectVersionArn"]
            print(f"training through the model-server ({args.train_steps} steps)…", flush=True)
            await _wait(rek, project, "TRAINING_COMPLETED", ("TRAINING_FAILED",), 1800)
            await rek.start_project_version(ProjectVersionArn=version, MinInferenceUnits=args.units)
            await _wait(rek, project, "RUNNING", ("FAILED",), 300)
            model_dir = work / "model"
            model_dir.mkdir()
            listed = await aws.s3.list_objects_v2(Bucket=names.artifacts_bucket, Prefix="models/")
            for item in listed["Contents"]:
                if "/model/" in item["Key"]:
                    got = await aws.s3.get_object(Bucket=names.artifacts_bucket, Key=item["Key"])
                    (model_dir / item["Key"].rsplit("/", 1)[1]).write_bytes(
                        await got["Body"].read()
                    )
            detector = Detector.load(model_dir)
            frames = []
            for path in sorted(test_dir.glob("*.jpg"))[: args.frames]:
                buf = io.BytesIO()
                Image.open(path).convert("RGB").save(buf, "JPEG", quality=90)
                frames.append(buf.getvalue())
            for f in frames[:5]:
                detector.detect(f)
                await rek.detect_custom_labels(ProjectVersionArn=version, Image={"Bytes": f})
            bare, served = [], []
            for f in frames:
                t = time.perf_counter()
                local = detector.detect(f)
                bare.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                remote = await rek.detect_custom_labels(
                    ProjectVersionArn=version, Image={"Bytes": f}
                )
                served.append((time.perf_counter() - t) * 1000)
                assert [x["Name"] for x in remote["CustomLabels"]] == [x["Name"] for x in local]
    finally:
        await server.stop()
        moto.stop()
    bare_ms, served_ms = statistics.median(bare), statistics.median(served)
    return {
        "frames": len(bare),
        "bare_detect_ms_median": round(bare_ms, 2),
        "detect_custom_labels_ms_median": round(served_ms, 2),
        "overhead_ms": round(served_ms - bare_ms, 2),
        "overhead_ratio": round(served_ms / bare_ms, 3),
        "inference_units": args.units,
        "machine": {"cpus": os.cpu_count()},
        "when": datetime.now(UTC).isoformat(),
    }


async def _wait(
    client: object, project: str, want: str, bad: tuple[str, ...], limit_s: float
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        versions = await client.describe_project_versions(ProjectArn=project)  # type: ignore[attr-defined]
        status = versions["ProjectVersionDescriptions"][0]["Status"]
        if status == want:
            return
        if status in bad:
            raise SystemExit(
                f"{status}: {versions['ProjectVersionDescriptions'][0].get('StatusMessage')}"
            )
        await asyncio.sleep(2)
    raise SystemExit(f"timed out waiting for {want}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--train-steps", type=int, default=250)  # ~70 s on an idle 2-core machine
    ap.add_argument("--train-images", type=int, default=120)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--units", type=int, default=20)
    figures = asyncio.run(run(ap.parse_args()))
    print(
        f"DetectCustomLabels {figures['detect_custom_labels_ms_median']} ms/frame   "
        f"bare detect() {figures['bare_detect_ms_median']} ms   "
        f"overhead {figures['overhead_ms']} ms (x{figures['overhead_ratio']})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
