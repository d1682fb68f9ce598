"""The Rekognition Custom Labels operations: projects, versions, training, runtime, detection.

Every operation receives the request members already validated against the
service model (:mod:`schema`) and returns the response members. State
changes are written through to S3 before the response is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from brandlens_core.aws import Client
from brandlens_core.logging import get_logger
from brandlens_model_server.errors import (
    S3_OBJECT_UNREADABLE,
    ImageTooLargeException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from brandlens_model_server.records import (
    HOSTED,
    REQUEUED_NOTE,
    RESTARTED_DURING_TRAINING,
    STARTABLE,
    ProjectRecord,
    S3Location,
    VersionRecord,
    VersionStatus,
    interrupted_message,
    now_epoch,
    project_arn,
    project_name_of,
    restart_note,
    version_arn,
    version_names_of,
)
from brandlens_model_server.s3util import bucket_exists, object_exists
from brandlens_model_server.serving import STARTING_MESSAGE, TOO_LARGE_MESSAGE, ModelHost
from brandlens_model_server.settings import ModelServerSettings
from brandlens_model_server.state import StateStore
from brandlens_model_server.training import QUEUED_MESSAGE, TrainingManager, budget_from

log = get_logger(__name__)

DEFAULT_PAGE_SIZE = 100
Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Record = TypeVar("Record", ProjectRecord, VersionRecord)


class ModelService:
    def __init__(
        self, settings: ModelServerSettings, s3: Client, state: StateStore, region: str
    ) -> None:
        self.settings = settings
        self.s3 = s3
        self.state = state
        self.region = region
        self.projects: dict[str, ProjectRecord] = {}
        self.versions: dict[str, dict[str, VersionRecord]] = {}
        self._last_status: dict[str, VersionStatus] = {}
        self.training = TrainingManager(settings, s3, self.save_version)
        self.host = ModelHost(settings, s3, self.save_version)
        self.operations: dict[str, Operation] = {
            "CreateProject": self.create_project,
            "DescribeProjects": self.describe_projects,
            "DeleteProject": self.delete_project,
            "CreateProjectVersion": self.create_project_version,
            "DescribeProjectVersions": self.describe_project_versions,
            "StartProjectVersion": self.start_project_version,
            "StopProjectVersion": self.stop_project_version,
            "DeleteProjectVersion": self.delete_project_version,
            "DetectCustomLabels": self.detect_custom_labels,
        }

    # -- state ---------------------------------------------------------------------

    async def save_version(self, record: VersionRecord) -> None:
        """Write ``record`` through, unless it was deleted meanwhile."""
        if self.versions.get(record.project, {}).get(record.version) is not record:
            return
        await self.state.put_version(record)
        if self._last_status.get(record.arn) != record.status:
            self._last_status[record.arn] = record.status
            log.info(
                "version.status",
                arn=record.arn,
                status=record.status.value,
                status_message=record.status_message,
            )

    async def recover(self) -> None:
        """Load the state and make every interrupted transition end somewhere defined.

        TRAINING_IN_PROGRESS (running or queued) → queued again and trained from
        scratch (see ``_retrain``), or TRAINING_FAILED once restarts cut
        ``max_training_attempts`` runs; STOPPING → STOPPED; RUNNING and
        STARTING → STARTING, loaded again (→ RUNNING, or FAILED with the reason);
        DELETING → deleted. What a killed server left in the cache dir for a
        version (training work dirs, model copies of versions not started again)
        is deleted.
        """
        await self.state.check_bucket()
        projects, versions = await self.state.load()
        for project in projects:
            self.projects[project.name] = project
            self.versions.setdefault(project.name, {})
        for version in versions:
            if version.project not in self.projects:
                log.warning("state.orphan_version", arn=version.arn)
                continue
            self.versions[version.project][version.version] = version
            self._last_status[version.arn] = version.status
        restarted: list[VersionRecord] = []
        retrain: list[tuple[bool, VersionRecord]] = []  # (was it running, version)
        for version in self._all_versions():
            if version.status == VersionStatus.DELETING:
                # Never written by this server (a delete removes the object), but a
                # version restored DELETING could be neither started nor deleted.
                await self.state.delete_version(version.project, version.version)
                self.versions[version.project].pop(version.version, None)
                self._last_status.pop(version.arn, None)
                await self.host.forget(version)
                log.info("version.deleted", arn=version.arn, after_restart=True)
                continue
            if version.status == VersionStatus.TRAINING_IN_PROGRESS:
                await self.training.remove_work_dirs(version)
                was_running = version.training_started_at is not None
                if await self._retrain(version):
                    retrain.append((was_running, version))
            elif version.status == VersionStatus.STOPPING:
                version.status = VersionStatus.STOPPED
                version.status_message = "The model is stopped."
                await self.save_version(version)
            elif version.status in (VersionStatus.RUNNING, VersionStatus.STARTING):
                version.status = VersionStatus.STARTING
                version.status_message = STARTING_MESSAGE + " (after a restart)"
                await self.save_version(version)
                restarted.append(version)
                continue  # its model is downloaded afresh
            await self.host.forget(version)  # no model runs: drop a copy left behind
        for version in restarted:
            self.host.start(version)
        # the runs cut while running get the slots first, then the queue in its order
        retrain.sort(key=lambda item: (not item[0], item[1].created_at))
        for _, version in retrain:
            self.training.submit(version)
        log.info(
            "state.loaded",
            projects=len(self.projects),
            versions=sum(len(v) for v in self.versions.values()),
            restarting=len(restarted),
            retraining=len(retrain),
        )

    async def _retrain(self, version: VersionRecord) -> bool:
        """Queue an interrupted training again from scratch (True), or fail it (False).

        It stays TRAINING_IN_PROGRESS with the same manifests, output and budget
        (the record's), queued with a note saying so. Only runs that had started
        count against ``max_training_attempts``; a version whose last allowed run
        was cut, or whose record predates the recorded budget (an older server
        wrote it), ends TRAINING_FAILED.
        """
        limit = self.settings.max_training_attempts
        cut = version.training_attempts
        if version.training_budget is None or cut >= limit:
            version.status = VersionStatus.TRAINING_FAILED
            version.status_message = (
                RESTARTED_DURING_TRAINING
                if version.training_budget is None
                else interrupted_message(cut, limit)
            )
            version.training_end_at = version.training_end_at or now_epoch()
            await self.save_version(version)
            log.warning(
                "training.not_restarted",
                arn=version.arn,
                attempts=cut,
                status_message=version.status_message,
            )
            return False
        note = REQUEUED_NOTE if cut == 0 else restart_note(cut + 1, limit)
        version.status_message = f"{QUEUED_MESSAGE}; {note}"
        version.progress = None
        version.expected_end_at = None
        version.training_started_at = None  # set again when the new run starts
        await self.save_version(version)
        log.info("training.restarted", arn=version.arn, attempt=cut + 1, limit=limit)
        return True

    async def shutdown(self) -> None:
        await self.training.shutdown()
        await self.host.shutdown()

    def _all_versions(self) -> list[VersionRecord]:
        return [v for versions in self.versions.values() for v in versions.values()]

    def _project(self, arn: str) -> ProjectRecord:
        project = self.projects.get(project_name_of(arn))
        if project is None or project.arn != arn:
            raise ResourceNotFoundException(f"Project {arn} not found.")
        return project

    def _version(self, arn: str) -> VersionRecord:
        project, version = version_names_of(arn)
        record = self.versions.get(project, {}).get(version)
        if record is None or record.arn != arn:
            raise ResourceNotFoundException(f"ProjectVersion {arn} not found.")
        return record

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "projects": len(self.projects),
            "versions": sum(len(v) for v in self.versions.values()),
            "trainings_running": self.training.running,
            "trainings_queued": self.training.queued,
            "models_running": self.host.running,
        }

    # -- projects ------------------------------------------------------------------

    async def create_project(self, req: dict[str, Any]) -> dict[str, Any]:
        name: str = req["ProjectName"]
        if req.get("Feature", "CUSTOM_LABELS") != "CUSTOM_LABELS":
            raise InvalidParameterException(
                "This server serves CUSTOM_LABELS projects only; Feature must be CUSTOM_LABELS"
            )
        if req.get("AutoUpdate") == "ENABLED":
            raise InvalidParameterException(
                "AutoUpdate applies to CONTENT_MODERATION projects only"
            )
        if name in self.projects:
            raise ResourceInUseException(f"A project named {name} already exists.")
        created = now_epoch()
        record = ProjectRecord(
            name=name,
            arn=project_arn(self.region, self.settings.account_id, name, created),
            created_at=created,
        )
        self.projects[name] = record
        self.versions[name] = {}
        try:
            await self.state.put_project(record)
        except Exception:
            del self.projects[name], self.versions[name]
            raise
        log.info("project.created", arn=record.arn)
        return {"ProjectArn": record.arn}

    async def describe_projects(self, req: dict[str, Any]) -> dict[str, Any]:
        names = req.get("ProjectNames")
        features = req.get("Features")
        projects = list(self.projects.values())
        if names is not None:
            projects = [p for p in projects if p.name in set(names)]
        if features is not None and "CUSTOM_LABELS" not in features:
            projects = []
        page, token = _paginate(
            projects,
            lambda p: (p.created_at, p.name),
            scope="projects",
            next_token=req.get("NextToken"),
            page_size=req.get("MaxResults", DEFAULT_PAGE_SIZE),
        )
        out: dict[str, Any] = {"ProjectDescriptions": [p.describe() for p in page]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_project(self, req: dict[str, Any]) -> dict[str, Any]:
        project = self._project(req["ProjectArn"])
        if self.versions.get(project.name):
            raise ResourceInUseException(
                f"Project {project.arn} still has project versions; delete them first."
            )
        await self.state.delete_project(project.name)
        self.projects.pop(project.name, None)
        self.versions.pop(project.name, None)
        log.info("project.deleted", arn=project.arn)
        return {"Status": "DELETING"}

    # -- versions ------------------------------------------------------------------

    async def create_project_version(self, req: dict[str, Any]) -> dict[str, Any]:
        project = self._project(req["ProjectArn"])
        name: str = req["VersionName"]
        output = req["OutputConfig"]
        if not output.get("S3Bucket"):
            raise InvalidParameterException("OutputConfig.S3Bucket is required")
        if "S3KeyPrefix" not in output:
            raise InvalidParameterException("OutputConfig.S3KeyPrefix is required")
        if req.get("FeatureConfig"):
            raise InvalidParameterException("FeatureConfig applies to CONTENT_MODERATION only")
        train = _single_manifest(req.get("TrainingData"), "TrainingData")
        if train is None:
            raise InvalidParameterException(
                "TrainingData with one Ground Truth manifest is required "
                "(this server has no project datasets)"
            )
        testing = req.get("TestingData")
        if testing is None:
            raise InvalidParameterException(
                "TestingData is required: one Ground Truth manifest, or AutoCreate true"
            )
        autocreate = bool(testing.get("AutoCreate", False))
        test = _single_manifest(testing, "TestingData")
        if autocreate and test is not None:
            raise InvalidParameterException(
                "TestingData takes either Assets or AutoCreate true, not both"
            )
        if not autocreate and test is None:
            raise InvalidParameterException(
                "TestingData needs one Ground Truth manifest in Assets, or AutoCreate true"
            )
        if name in self.versions.get(project.name, {}):
            raise ResourceInUseException(
                f"A version named {name} already exists in project {project.name}."
            )
        for location in (train, test):
            if location is not None and not await object_exists(
                self.s3, location.bucket, location.key, location.version
            ):
                raise InvalidS3ObjectException(S3_OBJECT_UNREADABLE)
        if not await bucket_exists(self.s3, output["S3Bucket"]):
            raise InvalidParameterException(
                f"OutputConfig.S3Bucket {output['S3Bucket']} does not exist or is not accessible"
            )
        if self.projects.get(project.name) is not project:  # deleted while we checked S3
            raise ResourceNotFoundException(f"Project {project.arn} not found.")
        if name in self.versions.get(project.name, {}):  # created while we checked S3
            raise ResourceInUseException(
                f"A version named {name} already exists in project {project.name}."
            )
        created = now_epoch()
        record = VersionRecord(
            project=project.name,
            version=name,
            arn=version_arn(self.region, self.settings.account_id, project.name, name, created),
            created_at=created,
            status=VersionStatus.TRAINING_IN_PROGRESS,
            status_message=QUEUED_MESSAGE,
            output_bucket=output["S3Bucket"],
            output_prefix=output["S3KeyPrefix"],
            train_manifest=train,
            test_manifest=test,
            autocreate_test=autocreate,
            version_description=req.get("VersionDescription"),
            kms_key_id=req.get("KmsKeyId"),
            training_budget=budget_from(self.settings),
        )
        self.versions[project.name][name] = record
        try:
            await self.save_version(record)
        except Exception:
            del self.versions[project.name][name]
            raise
        self.training.submit(record)
        return {"ProjectVersionArn": record.arn}

    async def describe_project_versions(self, req: dict[str, Any]) -> dict[str, Any]:
        project = self._project(req["ProjectArn"])
        versions = list(self.versions.get(project.name, {}).values())
        names = req.get("VersionNames")
        if names is not None:
            versions = [v for v in versions if v.version in set(names)]
        page, token = _paginate(
            versions,
            lambda v: (v.created_at, v.version),
            scope=f"versions:{project.arn}",
            next_token=req.get("NextToken"),
            page_size=req.get("MaxResults", DEFAULT_PAGE_SIZE),
        )
        out: dict[str, Any] = {"ProjectVersionDescriptions": [v.describe() for v in page]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_project_version(self, req: dict[str, Any]) -> dict[str, Any]:
        record = self._version(req["ProjectVersionArn"])
        if record.status == VersionStatus.TRAINING_IN_PROGRESS:
            raise ResourceInUseException(
                f"ProjectVersion {record.arn} is training; wait until training ends."
            )
        if record.status in HOSTED or record.status == VersionStatus.DELETING:
            raise ResourceInUseException(
                f"ProjectVersion {record.arn} is {record.status.value}; stop it first."
            )
        previous = record.status
        record.status = VersionStatus.DELETING  # in memory only: refuses a concurrent Start
        try:
            await self.state.delete_version(record.project, record.version)
        except Exception:
            record.status = previous
            raise
        self.versions.get(record.project, {}).pop(record.version, None)
        self._last_status.pop(record.arn, None)
        await self.host.forget(record)
        log.info("version.deleted", arn=record.arn)
        return {"Status": "DELETING"}

    # -- runtime -------------------------------------------------------------------

    async def start_project_version(self, req: dict[str, Any]) -> dict[str, Any]:
        record = self._version(req["ProjectVersionArn"])
        minimum: int = req["MinInferenceUnits"]
        maximum: int | None = req.get("MaxInferenceUnits")
        if maximum is not None and maximum < minimum:
            raise InvalidParameterException(
                "MaxInferenceUnits must be greater than or equal to MinInferenceUnits"
            )
        if record.status not in STARTABLE:
            if record.status == VersionStatus.TRAINING_FAILED:
                raise InvalidParameterException(
                    f"ProjectVersion {record.arn} failed training and has no model to start."
                )
            raise ResourceInUseException(
                f"ProjectVersion {record.arn} is {record.status.value} and cannot be started."
            )
        if record.model_location is None:
            raise InvalidParameterException(f"ProjectVersion {record.arn} has no trained model.")
        record.status = VersionStatus.STARTING
        record.status_message = STARTING_MESSAGE
        record.min_inference_units = minimum
        record.max_inference_units = maximum if maximum is not None else minimum
        await self.save_version(record)
        self.host.start(record)
        return {"Status": record.status.value}

    async def stop_project_version(self, req: dict[str, Any]) -> dict[str, Any]:
        record = self._version(req["ProjectVersionArn"])
        if record.status == VersionStatus.STOPPING:
            return {"Status": record.status.value}
        if record.status not in (VersionStatus.RUNNING, VersionStatus.STARTING):
            raise ResourceInUseException(
                f"ProjectVersion {record.arn} is {record.status.value}; "
                "only a RUNNING or STARTING model can be stopped."
            )
        record.status = VersionStatus.STOPPING
        record.status_message = "stopping: unloading the model"
        await self.save_version(record)
        self.host.stop(record)
        return {"Status": record.status.value}

    async def detect_custom_labels(self, req: dict[str, Any]) -> dict[str, Any]:
        image = req["Image"]
        has_bytes = "Bytes" in image
        has_s3 = "S3Object" in image
        if has_bytes == has_s3:
            raise InvalidParameterException("Image needs exactly one of Bytes and S3Object")
        if has_s3 and not (image["S3Object"].get("Bucket") and image["S3Object"].get("Name")):
            raise InvalidParameterException("Image.S3Object needs Bucket and Name")
        record = self._version(req["ProjectVersionArn"])
        model = self.host.admit(record)
        if has_bytes:
            data: bytes = image["Bytes"]
            if len(data) > self.settings.max_bytes_image_bytes:
                raise ImageTooLargeException(TOO_LARGE_MESSAGE)
        else:
            data = await self.host.read_s3_image(image["S3Object"])
        labels = await self.host.detect(
            record, model, data, req.get("MinConfidence"), req.get("MaxResults")
        )
        return {"CustomLabels": labels}


def _single_manifest(data: dict[str, Any] | None, what: str) -> S3Location | None:
    if not data or not data.get("Assets"):
        return None
    assets: list[dict[str, Any]] = data["Assets"]
    if len(assets) != 1:
        raise InvalidParameterException(f"{what} takes exactly one asset (a Ground Truth manifest)")
    obj = assets[0].get("GroundTruthManifest", {}).get("S3Object", {})
    if not obj.get("Bucket") or not obj.get("Name"):
        raise InvalidParameterException(
            f"{what}.Assets[0].GroundTruthManifest.S3Object needs Bucket and Name"
        )
    return S3Location(bucket=obj["Bucket"], key=obj["Name"], version=obj.get("Version"))


def _paginate(
    items: Sequence[Record],
    key: Callable[[Record], tuple[float, str]],
    *,
    scope: str,
    next_token: str | None,
    page_size: int,
) -> tuple[list[Record], str | None]:
    """Newest first; the token names the last item returned (stable across deletions)."""
    ordered = sorted(items, key=key, reverse=True)
    if next_token is not None:
        after = _decode_token(next_token, scope)
        ordered = [item for item in ordered if key(item) < after]
    page = ordered[:page_size]
    if len(ordered) > page_size:
        last = key(page[-1])
        token = json.dumps({"s": scope, "k": [last[0], last[1]]})
        return page, base64.urlsafe_b64encode(token.encode()).decode()
    return page, None


def _decode_token(token: str, scope: str) -> tuple[float, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        if value["s"] != scope:
            raise ValueError("token of another listing")
        created, name = value["k"]
        return float(created), str(name)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidPaginationTokenException("Invalid pagination token.") from None
