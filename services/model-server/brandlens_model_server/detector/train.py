"""The training process: ``python -m brandlens_model_server.detector.train --spec SPEC.json``.

See ../../CONTRACT.md §1. Reads Ground Truth manifests and their images from
S3, trains a LogoNet for a number of optimisation steps (early stopping on a
validation split taken by source media; the time budget is only a safety
stop, reported when reached), picks the score threshold on that validation
split, evaluates on the test set, and writes the model, the evaluation
summary and the manifests used to ``output_uri``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from brandlens_core.aws import AwsClients, Client, error_code
from brandlens_core.datasets import (
    FEW_MEDIA,
    GROUP_FIELD,
    Dataset,
    DatasetError,
    in_position_blocks,
    is_block,
    media_count,
    read_ground_truth,
    split_by_group,
    write_ground_truth,
)
from brandlens_core.settings import AwsSettings
from brandlens_model_server.detector.fit import Example, FitConfig, evaluate, fit
from brandlens_model_server.detector.imaging import InvalidImageError, decode
from brandlens_model_server.detector.runtime import save_model

STORE_SCALE = 1.5  # images are kept at 1.5x the input size, room for scale jitter
MIN_TRAINING_IMAGES = 4


class TrainingFailedError(Exception):
    """Bad data or settings: a message for the user, exit code 2."""


@dataclass(frozen=True)
class Spec:
    train_manifest_uri: str
    test_manifest_uri: str | None
    autocreate_test_percent: float
    output_uri: str
    work_dir: str
    max_training_seconds: float
    max_training_steps: int
    seed: int
    server_pid: int | None = None

    @classmethod
    def read(cls, path: Path) -> Spec:
        raw = json.loads(path.read_text())
        if int(raw.get("max_training_steps", 1)) < 1:
            raise ValueError("max_training_steps must be at least 1")
        return cls(
            train_manifest_uri=str(raw["train_manifest_uri"]),
            test_manifest_uri=raw.get("test_manifest_uri"),
            autocreate_test_percent=float(raw.get("autocreate_test_percent", 20)),
            output_uri=str(raw["output_uri"]),
            work_dir=str(raw["work_dir"]),
            max_training_seconds=float(raw.get("max_training_seconds", 3600)),
            max_training_steps=int(raw.get("max_training_steps", FitConfig.max_steps)),
            seed=int(raw.get("seed", 0)),
            server_pid=int(raw["server_pid"]) if raw.get("server_pid") else None,
        )


PARENT_CHECK_SECONDS = 1.0


def end_with_server(server_pid: int | None, interval: float = PARENT_CHECK_SECONDS) -> None:
    """SIGTERM this process as soon as its parent is no longer ``server_pid``.

    The model-server starts training in a session of its own, so a server killed by
    SIGKILL (alone or with the whole local stack) cannot end it. An orphan would train
    on for up to its time limit for nothing (the next server marks its version
    TRAINING_FAILED and ignores its output), taking the CPU from the retrain.
    ``server_pid`` comes from the spec, so a server that died while this process was
    still importing is noticed too; without it, the parent at this call is watched.
    """
    parent = server_pid or os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        print(f"the model server (pid {parent}) is gone: stopping", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="end-with-server", daemon=True).start()


def emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise TrainingFailedError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


async def read_text(s3: Client, uri: str, what: str) -> str:
    bucket, key = split_uri(uri)
    try:
        got = await s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NoSuchBucket", "AccessDenied", "403"):
            raise TrainingFailedError(
                f"the {what} {uri} could not be read ({error_code(exc)})"
            ) from None
        raise
    async with got["Body"] as body:
        data: bytes = await body.read()
    return data.decode("utf-8")


async def load_examples(
    s3: Client, dataset: Dataset, labels: list[str], store: tuple[int, int], work_dir: Path
) -> list[Example]:
    index = {name: i for i, name in enumerate(labels)}
    slots = asyncio.Semaphore(16)
    done = 0

    async def one(image: Any) -> Example:
        nonlocal done
        bucket, key = split_uri(image.source_ref)
        cache = work_dir / "images" / hashlib.sha256(image.source_ref.encode()).hexdigest()
        async with slots:
            if cache.exists():
                data = cache.read_bytes()
            else:
                try:
                    got = await s3.get_object(Bucket=bucket, Key=key)
                except Exception as exc:
                    if error_code(exc) in ("NoSuchKey", "404", "AccessDenied", "403"):
                        raise TrainingFailedError(
                            f"image {image.source_ref} could not be read ({error_code(exc)})"
                        ) from None
                    raise
                async with got["Body"] as body:
                    data = await body.read()
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_bytes(data)
        example = await asyncio.to_thread(_example, data, image, index, store)
        done += 1
        if done % 50 == 0:
            emit({"progress": 0.0, "message": f"loaded {done}/{len(dataset.images)} images"})
        return example

    return list(await asyncio.gather(*(one(i) for i in dataset.images)))


def _example(data: bytes, image: Any, index: dict[str, int], store: tuple[int, int]) -> Example:
    try:
        img = decode(data, target=store)
    except InvalidImageError as exc:
        raise TrainingFailedError(f"image {image.source_ref}: {exc}") from None
    ow, oh = img.info.get("original_size", img.size)
    if (ow, oh) != (image.width, image.height):
        # Manifests state the size the boxes refer to; trust the manifest's frame of reference.
        ow, oh = image.width, image.height
    s = min(store[0] / ow, store[1] / oh, 1.0)
    w, h = max(1, round(ow * s)), max(1, round(oh * s))
    arr = np.asarray(img.resize((w, h)))
    boxes = [
        (index[b.label], b.left * s, b.top * s, (b.left + b.width) * s, (b.top + b.height) * s)
        for b in image.boxes
    ]
    return Example(image=arr, boxes=boxes, group=image.group or image.source_ref)


def summary(
    result: dict[str, Any], labels: list[str], threshold: float, n_train: int, n_test: int
) -> dict[str, Any]:
    """The evaluation summary in Rekognition Custom Labels' layout (plus mAP@0.5)."""
    return {
        "Version": 1,
        "AggregatedEvaluationResults": {
            "F1Score": round(result["f1"], 6),
            "Precision": round(result["precision"], 6),
            "Recall": round(result["recall"], 6),
            "mAP50": round(result["map50"], 6),
        },
        "LabelEvaluationResults": [
            {
                "Label": name,
                "NumberOfTestingImages": result["labels"][name]["images"],
                "Metrics": {
                    "F1Score": round(result["labels"][name]["f1"], 6),
                    "Precision": round(result["labels"][name]["precision"], 6),
                    "Recall": round(result["labels"][name]["recall"], 6),
                    "Threshold": round(threshold * 100, 3),
                    "AP50": None
                    if result["labels"][name]["ap50"] is None
                    else round(result["labels"][name]["ap50"], 6),
                },
            }
            for name in labels
        ],
        "EvaluationDetails": {
            "EvaluationEndTimestamp": datetime.now(UTC).isoformat(),
            "NumberOfTrainingImages": n_train,
            "NumberOfTestingImages": n_test,
        },
    }


@dataclass(frozen=True)
class Trained:
    """What the training process reports on its result line."""

    f1: float
    steps: int
    max_steps: int
    stopped_by: str
    seconds: float
    max_seconds: float


async def run(spec: Spec, config: FitConfig) -> Trained:
    work = Path(spec.work_dir)
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    started = time.monotonic()
    async with AwsClients(AwsSettings(), services=("s3",)) as clients:
        s3 = clients.s3
        train_text = await read_text(s3, spec.train_manifest_uri, "training manifest")
        try:
            train_ds = read_ground_truth(train_text, group_field=GROUP_FIELD)
            if spec.test_manifest_uri:
                test_text = await read_text(s3, spec.test_manifest_uri, "test manifest")
                test_ds = read_ground_truth(test_text, group_field=GROUP_FIELD)
            else:
                train_ds, test_ds = auto_test_split(
                    train_ds, spec.autocreate_test_percent / 100, spec.seed
                )
        except DatasetError as exc:
            raise TrainingFailedError(f"the manifest is invalid: {exc}") from None
        labels = list(train_ds.labels)
        unknown = sorted({b.label for i in test_ds.images for b in i.boxes} - set(labels))
        if unknown:
            raise TrainingFailedError(
                f"the test set has labels the training set lacks: {', '.join(unknown)}"
            )
        boxed = {b.label for i in train_ds.images for b in i.boxes}
        if not boxed:
            raise TrainingFailedError("the training set has no boxes: label some logos first")
        if len(train_ds.images) < MIN_TRAINING_IMAGES:
            raise TrainingFailedError(
                f"the training set has {len(train_ds.images)} images; at least "
                f"{MIN_TRAINING_IMAGES} are needed"
            )
        store = (
            round(config.input_size[0] * STORE_SCALE),
            round(config.input_size[1] * STORE_SCALE),
        )
        emit(
            {
                "progress": 0.0,
                "message": f"loading {len(train_ds.images) + len(test_ds.images)} images",
            }
        )
        train_examples = await load_examples(s3, train_ds, labels, store, work)
        test_examples = await load_examples(s3, test_ds, labels, store, work)
        fit_train, val = _validation_split(train_ds, train_examples, spec.seed)
        remaining = spec.max_training_seconds - (time.monotonic() - started) - 20
        if remaining < 5:
            raise TrainingFailedError(
                f"the time limit ({spec.max_training_seconds:g} s) was used up loading images; "
                "raise BRANDLENS_MODEL_SERVER_MAX_TRAINING_SECONDS"
            )
        config.max_seconds = remaining  # the safety stop; the step budget decides the run
        config.max_steps = spec.max_training_steps
        config.seed = spec.seed
        result = await asyncio.to_thread(fit, fit_train, val, labels, config, emit)
        evaluation = evaluate(
            result.model, test_examples, labels, result.threshold, config.input_size
        )
        model_dir = work / "model"
        save_model(
            result.model,
            model_dir,
            labels=labels,
            input_size=config.input_size,
            threshold=result.threshold,
            extra={
                "val_map50": result.best_val_map,
                "steps": result.steps,
                "max_steps": config.max_steps,
                "stopped_by": result.stopped_by,
                "train_seconds": round(result.seconds, 1),
            },
        )
        out_bucket, out_prefix = split_uri(spec.output_uri)
        out_prefix = out_prefix if out_prefix.endswith("/") or not out_prefix else out_prefix + "/"
        for path in sorted(model_dir.iterdir()):
            await s3.put_object(
                Bucket=out_bucket, Key=f"{out_prefix}model/{path.name}", Body=path.read_bytes()
            )
        report = summary(
            evaluation, labels, result.threshold, len(train_ds.images), len(test_ds.images)
        )
        report["Training"] = {
            "history": result.history,
            "steps": result.steps,
            "max_steps": config.max_steps,
            "stopped_by": result.stopped_by,
            "seconds": round(result.seconds, 1),
            "max_seconds": round(remaining, 1),
            "val_map50": result.best_val_map,
        }
        await s3.put_object(
            Bucket=out_bucket,
            Key=f"{out_prefix}evaluation/summary.json",
            Body=json.dumps(report, indent=2).encode(),
            ContentType="application/json",
        )
        for name, ds in (("train", train_ds), ("test", test_ds)):
            text = write_ground_truth(ds, group_field=GROUP_FIELD)
            await s3.put_object(
                Bucket=out_bucket, Key=f"{out_prefix}manifests/{name}.manifest", Body=text.encode()
            )
        f1 = float(evaluation["f1"])
        emit({"progress": 1.0, "message": f"test mAP@0.5 {evaluation['map50']:.3f}, F1 {f1:.3f}"})
        return Trained(
            f1=f1,
            steps=result.steps,
            max_steps=config.max_steps,
            stopped_by=result.stopped_by,
            seconds=round(result.seconds, 1),
            max_seconds=round(remaining, 1),
        )


def _few_media_in_blocks(dataset: Dataset) -> Dataset:
    """Fewer than :data:`FEW_MEDIA` whole videos (no blocks yet): cut each into runs of
    consecutive frames, so a split has something to hold out that is not a whole video."""
    if media_count(dataset) < FEW_MEDIA and not any(is_block(i.group) for i in dataset.images):
        return in_position_blocks(dataset)
    return dataset


def auto_test_split(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """``(train, test)`` for a request whose testing data is AutoCreate: leakage-free like
    the labeler's split (a manifest of one video is split by runs of its frames)."""
    return split_by_group(_few_media_in_blocks(dataset), fraction, seed=seed)


def _validation_split(
    dataset: Dataset, examples: list[Example], seed: int
) -> tuple[list[Example], list[Example]]:
    """A validation set held out of the training set, leakage-free like the labeler's split.

    Groups (the manifest's ``brandlens-group``) stay whole. The labeler already writes
    time blocks as groups when it has few videos; a training set of fewer than
    :data:`FEW_MEDIA` whole videos (older datasets, other manifests) is cut into runs of
    consecutive frames first, so that one or two videos still leave something to validate
    on. A set with nothing to hold out (one block) trains without validation.
    """
    if len(examples) < 10:
        return examples, []
    dataset = _few_media_in_blocks(dataset)
    try:
        fit_part, val_part = split_by_group(dataset, 0.15, seed=seed + 1)
    except DatasetError:
        return examples, []
    val_refs = {i.source_ref for i in val_part.images}
    by_ref = {i.source_ref: e for i, e in zip(dataset.images, examples, strict=True)}
    val = [by_ref[r] for r in val_refs if r in by_ref]
    fit_examples = [by_ref[i.source_ref] for i in fit_part.images if i.source_ref in by_ref]
    return (fit_examples, val) if val and fit_examples else (examples, [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        spec = Spec.read(args.spec)
    except (OSError, ValueError, KeyError) as exc:
        emit({"result": "TRAINING_FAILED", "message": f"unreadable training spec: {exc}"})
        return 2
    end_with_server(spec.server_pid)
    try:
        trained = asyncio.run(run(spec, FitConfig(max_steps=spec.max_training_steps)))
    except TrainingFailedError as exc:
        emit({"result": "TRAINING_FAILED", "message": str(exc)})
        return 2
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        emit(
            {"result": "TRAINING_FAILED", "message": f"internal error: {type(exc).__name__}: {exc}"}
        )
        return 1
    emit(
        {
            "result": "TRAINING_COMPLETED",
            "f1": round(trained.f1, 6),
            "steps": trained.steps,
            "max_steps": trained.max_steps,
            "stopped_by": trained.stopped_by,
            "seconds": trained.seconds,
            "max_seconds": trained.max_seconds,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
