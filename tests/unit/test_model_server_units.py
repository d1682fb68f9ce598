"""model-server units: token bucket, request validation, ARNs, records, pagination, wire errors."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from botocore.model import ServiceModel
from botocore.parsers import JSONParser

from brandlens_model_server.app import error_response
from brandlens_model_server.errors import (
    ApiError,
    InvalidPaginationTokenException,
    ProvisionedThroughputExceededException,
    ResourceNotFoundException,
    ThrottlingException,
    UnknownOperationException,
    ValidationException,
)
from brandlens_model_server.records import (
    S3Location,
    VersionRecord,
    VersionStatus,
    project_arn,
    project_name_of,
    version_arn,
    version_names_of,
)
from brandlens_model_server.schema import parse_input, service_model
from brandlens_model_server.service import _paginate
from brandlens_model_server.serving import _clean, sniff_image
from brandlens_model_server.settings import ModelServerSettings
from brandlens_model_server.throttle import TokenBucket
from brandlens_model_server.training import _json_line, _last_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- token bucket ---------------------------------------------------------------------


def test_a_full_bucket_serves_a_burst_then_refuses() -> None:
    clock = Clock()
    bucket = TokenBucket.for_units(1, 5.0, burst_seconds=1.0, clock=clock)
    assert [bucket.try_take() for _ in range(7)] == [True] * 5 + [False] * 2


def test_the_bucket_refills_at_the_rate_and_never_above_capacity() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_second=2.0, capacity=2.0, clock=clock)
    assert bucket.try_take()
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.now += 0.49
    assert not bucket.try_take()  # 0.98 of a token
    clock.now += 0.01
    assert bucket.try_take()
    clock.now += 3600
    assert bucket.available == pytest.approx(2.0)


def test_inference_units_multiply_the_rate() -> None:
    clock = Clock()
    one = TokenBucket.for_units(1, 2.0, burst_seconds=1.0, clock=clock)
    three = TokenBucket.for_units(3, 2.0, burst_seconds=1.0, clock=clock)
    assert three.rate_per_second == 3 * one.rate_per_second == 6.0
    assert sum(three.try_take() for _ in range(10)) == 6


def test_a_slow_rate_still_serves_one_request() -> None:
    bucket = TokenBucket.for_units(1, 0.1, burst_seconds=1.0, clock=Clock())
    assert bucket.capacity == 1.0
    assert bucket.try_take()
    assert not bucket.try_take()


def test_the_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0, 1)
    with pytest.raises(ValueError, match="at least one"):
        TokenBucket(1, 0.5)


# -- request validation (the service model's own constraints) --------------------------


def test_valid_requests_pass_and_keep_their_members() -> None:
    assert parse_input("CreateProject", b'{"ProjectName": "acme_1.v-2"}') == {
        "ProjectName": "acme_1.v-2"
    }
    assert parse_input("DescribeProjects", b"") == {}
    assert parse_input("DescribeProjects", b'{"Unknown": 1, "MaxResults": 5}') == {"MaxResults": 5}


def test_constraint_violations_read_like_aws() -> None:
    with pytest.raises(ValidationException) as error:
        parse_input("CreateProject", json.dumps({"ProjectName": "x" * 256}).encode())
    assert error.value.message.startswith("1 validation error detected: Value '")
    assert "at 'projectName' failed to satisfy constraint: Member must have length less than" in (
        error.value.message
    )
    with pytest.raises(ValidationException) as several:
        parse_input(
            "StartProjectVersion",
            json.dumps({"ProjectVersionArn": "nope", "MinInferenceUnits": 0}).encode(),
        )
    assert several.value.message.startswith("3 validation errors detected: ")
    assert "Value '0' at 'minInferenceUnits'" in several.value.message
    with pytest.raises(ValidationException, match="Member must satisfy enum value set"):
        parse_input("DescribeProjects", b'{"Features": ["FACES"]}')
    with pytest.raises(ValidationException, match=r"at 'versionNames.1.member'"):
        parse_input(
            "DescribeProjectVersions",
            json.dumps(
                {
                    "ProjectArn": project_arn("us-east-1", "123456789012", "p", 1.0),
                    "VersionNames": [""],
                }
            ).encode(),
        )


def test_types_are_checked() -> None:
    for body in (
        b'{"ProjectName": 3}',
        b'{"ProjectName": ["a"]}',
    ):
        with pytest.raises(ValidationException, match="Member must be a string"):
            parse_input("CreateProject", body)
    with pytest.raises(ValidationException, match="Member must be an integer"):
        parse_input("DescribeProjects", b'{"MaxResults": true}')
    with pytest.raises(ValidationException, match="not valid JSON"):
        parse_input("DescribeProjects", b"{")
    with pytest.raises(ValidationException, match="JSON object"):
        parse_input("DescribeProjects", b"[]")


def test_blobs_arrive_base64_and_leave_decoded() -> None:
    arn = version_arn("us-east-1", "123456789012", "p", "v", 1.0)
    image = b"\x89PNG\r\n\x1a\nrest"
    body = {"ProjectVersionArn": arn, "Image": {"Bytes": base64.b64encode(image).decode()}}
    parsed = parse_input("DetectCustomLabels", json.dumps(body).encode())
    assert parsed["Image"]["Bytes"] == image
    body["Image"] = {"Bytes": "not base64!"}
    with pytest.raises(ValidationException, match="base64"):
        parse_input("DetectCustomLabels", json.dumps(body).encode())
    body["Image"] = {"Bytes": base64.b64encode(b"\0" * (5 * 1024 * 1024 + 1)).decode()}
    with pytest.raises(ValidationException, match="length less than or equal to 5242880"):
        parse_input("DetectCustomLabels", json.dumps(body).encode())


def test_operations_outside_the_model_are_unknown() -> None:
    with pytest.raises(UnknownOperationException):
        parse_input("NoSuchOperation", b"{}")


# -- ARNs and records -----------------------------------------------------------------


def test_arns_have_the_formats_of_the_service_model() -> None:
    shapes = service_model()
    project_pattern = shapes.shape_for("ProjectArn").metadata["pattern"]
    version_pattern = shapes.shape_for("ProjectVersionArn").metadata["pattern"]
    project = project_arn("eu-west-1", "123456789012", "acme", 1795316129.163)
    version = version_arn("eu-west-1", "123456789012", "acme", "v1.2", 1795316129.5)
    assert project == "arn:aws:rekognition:eu-west-1:123456789012:project/acme/1795316129163"
    assert version == (
        "arn:aws:rekognition:eu-west-1:123456789012:project/acme/version/v1.2/1795316129500"
    )
    assert re.fullmatch(project_pattern, project)
    assert re.fullmatch(version_pattern, version)
    assert project_name_of(project) == "acme"
    assert version_names_of(version) == ("acme", "v1.2")
    with pytest.raises(ResourceNotFoundException):
        project_name_of(version)
    with pytest.raises(ResourceNotFoundException):
        version_names_of(project)


def _record(**changes: object) -> VersionRecord:
    base: dict[str, object] = {
        "project": "acme",
        "version": "v1",
        "arn": version_arn("us-east-1", "123456789012", "acme", "v1", 1.0),
        "created_at": 1.0,
        "status": VersionStatus.TRAINING_IN_PROGRESS,
        "output_bucket": "artifacts",
        "output_prefix": "models",
        "train_manifest": S3Location(bucket="media", key="train.manifest"),
    }
    return VersionRecord.model_validate(base | changes)


def test_version_outputs_go_under_project_and_version() -> None:
    assert _record().output_uri == "s3://artifacts/models/acme/v1/"
    assert _record(output_prefix="models/").output_uri == "s3://artifacts/models/acme/v1/"
    assert _record(output_prefix="").output_uri == "s3://artifacts/acme/v1/"


def test_a_version_renders_as_a_project_version_description() -> None:
    record = _record(
        status=VersionStatus.RUNNING,
        status_message="The model is running.",
        f1_score=0.9,
        evaluation_summary=S3Location(bucket="artifacts", key="s.json"),
        min_inference_units=1,
        max_inference_units=2,
        autocreate_test=True,
    )
    described = record.describe()
    members = set(service_model().shape_for("ProjectVersionDescription").members)
    assert set(described) <= members
    assert described["EvaluationResult"] == {
        "F1Score": 0.9,
        "Summary": {"S3Object": {"Bucket": "artifacts", "Name": "s.json"}},
    }
    assert described["TestingDataResult"]["Input"] == {"Assets": [], "AutoCreate": True}
    assert (described["MinInferenceUnits"], described["MaxInferenceUnits"]) == (1, 2)
    # JSON round trip: what the state store writes is what it reads
    assert VersionRecord.model_validate_json(record.model_dump_json()) == record


# -- pagination -------------------------------------------------------------------------


def test_pages_are_newest_first_and_tokens_are_scoped() -> None:
    records = [_record(version=f"v{i}", created_at=float(i)) for i in range(5)]
    key = lambda r: (r.created_at, r.version)  # noqa: E731
    page, token = _paginate(records, key, scope="a", next_token=None, page_size=2)
    assert [r.version for r in page] == ["v4", "v3"]
    assert token
    page, token = _paginate(records, key, scope="a", next_token=token, page_size=2)
    assert [r.version for r in page] == ["v2", "v1"]
    assert token
    page, last = _paginate(records, key, scope="a", next_token=token, page_size=2)
    assert [r.version for r in page] == ["v0"]
    assert last is None
    with pytest.raises(InvalidPaginationTokenException):
        _paginate(records, key, scope="b", next_token=token, page_size=2)
    with pytest.raises(InvalidPaginationTokenException):
        _paginate(records, key, scope="a", next_token="!!", page_size=2)


# -- detection helpers ------------------------------------------------------------------


def test_images_are_sniffed_by_their_magic_bytes() -> None:
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_image(b"\x89PNG\r\n\x1a\nrest") == "png"
    assert sniff_image(b"GIF89a") is None
    assert sniff_image(b"") is None


def test_labels_are_cleaned_sorted_and_capped() -> None:
    box = {"Width": 1, "Height": 0.5, "Left": 0, "Top": 0.25}
    labels = [
        {"Name": "a", "Confidence": 60, "Geometry": {"BoundingBox": box}},
        {"Name": "b", "Confidence": 90.5, "Extra": "dropped"},
    ]
    assert _clean(labels, None) == [
        {"Name": "b", "Confidence": 90.5},
        {
            "Name": "a",
            "Confidence": 60.0,
            "Geometry": {"BoundingBox": {"Width": 1.0, "Height": 0.5, "Left": 0.0, "Top": 0.25}},
        },
    ]
    assert [x["Name"] for x in _clean(labels, 1)] == ["b"]


# -- training process output ------------------------------------------------------------


def test_training_lines_are_json_objects_or_ignored() -> None:
    assert _json_line(b'{"progress": 0.5}\n') == {"progress": 0.5}
    assert _json_line(b"Epoch 3 ...\n") is None
    assert _json_line(b"{broken\n") is None
    assert _json_line(b"[1, 2]\n") is None


def test_the_last_stderr_line_explains_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("Traceback (most recent call last):\n  ...\nMemoryError: out of memory\n\n")
    assert _last_line(log) == "MemoryError: out of memory"
    assert _last_line(tmp_path / "missing.log") == ""


# -- wire format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValidationException("bad"), 400),
        (ProvisionedThroughputExceededException("slow down"), 400),
        (ThrottlingException("busy"), 500),
    ],
)
def test_botocore_reads_our_errors_as_aws_errors(error: ApiError, status: int) -> None:
    response = error_response(error, "req-1")
    assert response.status == status
    assert response.body is not None
    assert isinstance(response.body, bytes)
    model: ServiceModel = service_model()
    parsed = JSONParser().parse(
        {
            "status_code": response.status,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.body,
        },
        model.operation_model("DetectCustomLabels").output_shape,
    )
    assert parsed["Error"]["Code"] == error.code
    assert parsed["Error"]["Message"] == error.message
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_settings_are_read_under_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLENS_MODEL_SERVER_PORT", "9400")
    monkeypatch.setenv("BRANDLENS_MODEL_SERVER_STATE_BUCKET", "state-bucket")
    monkeypatch.setenv("BRANDLENS_MODEL_SERVER_STATE_PREFIX", "custom")
    monkeypatch.setenv("BRANDLENS_MODEL_SERVER_RATE_PER_INFERENCE_UNIT_PER_SECOND", "2.5")
    settings = ModelServerSettings()
    assert (settings.port, settings.state_bucket, settings.state_prefix) == (
        9400,
        "state-bucket",
        "custom/",
    )
    assert settings.rate_per_inference_unit_per_second == 2.5
    defaults = ModelServerSettings.model_validate({})
    assert (defaults.host, defaults.account_id, defaults.max_concurrent_trainings) == (
        "127.0.0.1",
        "123456789012",
        1,
    )
    monkeypatch.setenv("BRANDLENS_MODEL_SERVER_ACCOUNT_ID", "12")
    with pytest.raises(ValueError, match="account_id"):
        ModelServerSettings()
