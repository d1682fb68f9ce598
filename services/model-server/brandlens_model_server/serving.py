"""Running models: load on StartProjectVersion, unload on Stop, detect in a bounded pool.

Start downloads the version's ``model/`` folder from its output location to
``cache_dir/models/<project>/<version>/`` and calls ``Detector.load(dir)``
(CONTRACT.md §2) in a thread; the version becomes RUNNING, or FAILED with the
reason. Detection goes through, in order: the model's token bucket
(ProvisionedThroughputExceededException), the image checks (size, format),
the bound on admitted-but-unfinished detections (ThrottlingException), then
``detector.detect`` on the shared inference thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from brandlens_core.aws import Client, error_code
from brandlens_core.logging import get_logger
from brandlens_model_server.errors import (
    S3_OBJECT_UNREADABLE,
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidS3ObjectException,
    ProvisionedThroughputExceededException,
    ResourceNotReadyException,
    ThrottlingException,
)
from brandlens_model_server.records import VersionRecord, VersionStatus
from brandlens_model_server.s3util import NOT_FOUND_CODES, download_prefix
from brandlens_model_server.settings import ModelServerSettings
from brandlens_model_server.throttle import TokenBucket

log = get_logger(__name__)

RUNNING_MESSAGE = "The model is running."
STOPPED_MESSAGE = "The model is stopped."
STARTING_MESSAGE = "starting: loading the model"
INVALID_IMAGE_MESSAGE = "Request has invalid image format"
TOO_LARGE_MESSAGE = "Image size is too large."

Save = Callable[[VersionRecord], Awaitable[None]]


class Detector(Protocol):
    """What CONTRACT.md §2 promises of ``detector.runtime.Detector``."""

    labels: list[str]
    threshold: float

    def detect(
        self,
        image_bytes: bytes,
        min_confidence: float | None = None,
        max_results: int | None = None,
    ) -> list[dict[str, Any]]: ...


@dataclass
class LoadedModel:
    detector: Detector
    invalid_image_error: type[BaseException]
    bucket: TokenBucket
    directory: Path


def sniff_image(data: bytes) -> str | None:
    """``jpeg`` or ``png`` from the magic bytes, else None (Rekognition takes only these)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return None


class ModelHost:
    def __init__(self, settings: ModelServerSettings, s3: Client, save: Save) -> None:
        self.settings = settings
        self.s3 = s3
        self._save = save
        self._loaded: dict[str, LoadedModel] = {}
        self._transitions: dict[str, asyncio.Task[None]] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=settings.inference_threads, thread_name_prefix="detect"
        )
        self._in_flight = 0
        self._limit = settings.inference_threads + settings.max_queued_detections

    @property
    def running(self) -> int:
        return len(self._loaded)

    def model_dir(self, record: VersionRecord) -> Path:
        return self.settings.cache_dir / "models" / record.project / record.version

    # -- start / stop ---------------------------------------------------------------

    def start(self, record: VersionRecord) -> None:
        """Load ``record``'s model in the background. It must already be saved as STARTING."""
        self._spawn(record, self._start(record), "start")

    def stop(self, record: VersionRecord) -> None:
        """Unload ``record``'s model in the background. It must already be saved as STOPPING."""
        self._spawn(record, self._stop(record), "stop")

    def _spawn(self, record: VersionRecord, work: Any, kind: str) -> None:
        previous = self._transitions.get(record.arn)
        task = asyncio.create_task(self._after(previous, work), name=f"{kind}-{record.arn}")
        self._transitions[record.arn] = task

        def _done(t: asyncio.Task[None], arn: str = record.arn) -> None:
            if self._transitions.get(arn) is t:
                del self._transitions[arn]

        task.add_done_callback(_done)

    @staticmethod
    async def _after(previous: asyncio.Task[None] | None, work: Any) -> None:
        """Run ``work`` once the previous transition of the same model has ended."""
        if previous is not None and not previous.done():
            previous.cancel()  # a stop cancels a start still loading
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        await work

    async def _start(self, record: VersionRecord) -> None:
        started = time.monotonic()
        directory = self.model_dir(record)
        try:
            if record.model_location is None:
                raise RuntimeError("the version has no trained model")
            runtime = await asyncio.to_thread(importlib.import_module, self.settings.runtime_module)
            await asyncio.to_thread(shutil.rmtree, directory, True)
            count = await download_prefix(
                self.s3, record.model_location.bucket, record.model_location.key, directory
            )
            if count == 0:
                raise RuntimeError(f"no model files under {record.model_location.uri}")
            detector = await asyncio.to_thread(_load, runtime, directory)
            units = record.min_inference_units or 1
            self._loaded[record.arn] = LoadedModel(
                detector=detector,
                invalid_image_error=getattr(runtime, "InvalidImageError", ValueError),
                bucket=TokenBucket.for_units(
                    units,
                    self.settings.rate_per_inference_unit_per_second,
                    self.settings.burst_seconds,
                ),
                directory=directory,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            record.status = VersionStatus.FAILED
            record.status_message = _load_failure(exc, self.settings.runtime_module)
            log.warning("model.start_failed", arn=record.arn, error=str(exc))
            await asyncio.to_thread(shutil.rmtree, directory, True)
            await asyncio.shield(self._save(record))
            return
        record.status = VersionStatus.RUNNING
        record.status_message = RUNNING_MESSAGE
        log.info(
            "model.running",
            arn=record.arn,
            inference_units=record.min_inference_units,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        await asyncio.shield(self._save(record))

    async def _stop(self, record: VersionRecord) -> None:
        model = self._loaded.pop(record.arn, None)
        # In-flight detections keep their reference to the detector and finish.
        await asyncio.to_thread(shutil.rmtree, self.model_dir(record), True)
        del model
        record.status = VersionStatus.STOPPED
        record.status_message = STOPPED_MESSAGE
        log.info("model.stopped", arn=record.arn)
        await asyncio.shield(self._save(record))

    async def forget(self, record: VersionRecord) -> None:
        """Drop everything local about a deleted version."""
        self._loaded.pop(record.arn, None)
        await asyncio.to_thread(shutil.rmtree, self.model_dir(record), True)

    async def shutdown(self) -> None:
        """Cancel loads in progress, let stops finish, drop the models, end the pool.

        Records keep their persisted status: RUNNING and STARTING versions are
        started again by the next server on the same state.
        """
        tasks = list(self._transitions.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loaded.clear()
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)

    # -- detection ------------------------------------------------------------------

    def admit(self, record: VersionRecord) -> LoadedModel:
        model = self._loaded.get(record.arn)
        if record.status != VersionStatus.RUNNING or model is None:
            raise ResourceNotReadyException(
                f"ProjectVersion {record.arn} is {record.status.value}, not RUNNING; "
                "start it with StartProjectVersion"
            )
        if not model.bucket.try_take():
            raise ProvisionedThroughputExceededException(
                f"More requests than the model's {record.min_inference_units} inference unit(s) "
                f"serve ({model.bucket.rate_per_second:g} per second)"
            )
        return model

    async def read_s3_image(self, s3_object: dict[str, Any]) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": s3_object["Bucket"], "Key": s3_object["Name"]}
        if s3_object.get("Version"):
            kwargs["VersionId"] = s3_object["Version"]
        try:
            response = await self.s3.get_object(**kwargs)
        except Exception as exc:
            if error_code(exc) in NOT_FOUND_CODES or error_code(exc) in ("400", "InvalidArgument"):
                raise InvalidS3ObjectException(S3_OBJECT_UNREADABLE) from None
            raise
        async with response["Body"] as stream:
            if int(response.get("ContentLength", 0)) > self.settings.max_s3_image_bytes:
                raise ImageTooLargeException(TOO_LARGE_MESSAGE)
            data: bytes = await stream.read()
        return data

    async def detect(
        self,
        record: VersionRecord,
        model: LoadedModel,
        image: bytes,
        min_confidence: float | None,
        max_results: int | None,
    ) -> list[dict[str, Any]]:
        if sniff_image(image) is None:
            raise InvalidImageFormatException(INVALID_IMAGE_MESSAGE)
        if self._in_flight >= self._limit:
            raise ThrottlingException(
                "Every inference thread is busy and the queue is full; try again"
            )
        self._in_flight += 1
        try:
            call = functools.partial(
                model.detector.detect,
                image,
                min_confidence=min_confidence,
                max_results=max_results,
            )
            loop = asyncio.get_running_loop()
            labels = await loop.run_in_executor(self._pool, call)
        except model.invalid_image_error:
            raise InvalidImageFormatException(INVALID_IMAGE_MESSAGE) from None
        except RuntimeError as exc:
            if "shutdown" in str(exc):  # the pool is closing: the server is stopping
                raise ThrottlingException("The model server is shutting down; try again") from None
            raise
        finally:
            self._in_flight -= 1
        return _clean(labels, max_results)


def _load(runtime: ModuleType, directory: Path) -> Detector:
    detector_class = getattr(runtime, "Detector", None)
    if detector_class is None:
        raise RuntimeError(f"{runtime.__name__} has no Detector")
    detector: Detector = detector_class.load(directory)
    return detector


def _load_failure(exc: Exception, module: str) -> str:
    if isinstance(exc, ImportError):
        return (
            f"the model could not be loaded: the detector runtime {module} is not available ({exc})"
        )
    return f"the model could not be loaded: {exc}"


def _clean(labels: list[dict[str, Any]], max_results: int | None) -> list[dict[str, Any]]:
    """The detector's labels as Rekognition returns them: highest confidence first."""
    out: list[dict[str, Any]] = []
    for label in labels:
        item: dict[str, Any] = {
            "Name": str(label["Name"]),
            "Confidence": float(label["Confidence"]),
        }
        geometry = label.get("Geometry")
        if isinstance(geometry, dict) and isinstance(geometry.get("BoundingBox"), dict):
            box = geometry["BoundingBox"]
            item["Geometry"] = {
                "BoundingBox": {k: float(box[k]) for k in ("Width", "Height", "Left", "Top")}
            }
        out.append(item)
    out.sort(key=lambda item: -item["Confidence"])
    return out[:max_results] if max_results else out  # 0, like None: no cap
