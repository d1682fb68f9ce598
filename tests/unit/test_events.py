"""The event catalog and the envelopes messages arrive in."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from brandlens_core.envelopes import (
    InvalidMessageError,
    parse_catalog_event,
    parse_s3_object_created,
)
from brandlens_core.events import CATALOG, MediaAccepted, MediaRef, Purpose, parse_event
from brandlens_core.publisher import MAX_ENTRIES_PER_CALL, PublishError, _batches

EVENTS = Path(__file__).parent.parent / "events"


def test_every_event_named_in_the_architecture_is_in_the_catalog() -> None:
    assert set(CATALOG) == {
        "MediaAccepted",
        "MediaRejected",
        "FramesExtracted",
        "FramingFailed",
        "LabelingJobOpened",
        "DatasetReady",
        "LabelingFailed",
        "ModelTrained",
        "TrainingFailed",
        "ModelRunning",
        "ModelStopped",
        "ModelFailed",
        "AnalysisCompleted",
        "AnalysisFailed",
    }


def test_events_are_past_tense_and_versioned() -> None:
    for name, model in CATALOG.items():
        # Past tense, or the state reached (ModelRunning, DatasetReady: the design's names).
        assert name.endswith(("ed", "Ready", "Running")), name
        assert model.model_fields["schema_version"].default == 1


def accepted() -> MediaAccepted:
    return MediaAccepted(
        event_id="e1",
        occurred_at=datetime(2026, 11, 22, tzinfo=UTC),
        job_id="job-1",
        project="acme",
        purpose=Purpose.ANALYSIS,
        media=MediaRef(
            bucket="b",
            key="analysis/acme/x.jpg",
            size_bytes=10,
            kind="image",
            format="jpeg",
            content_type="image/jpeg",
            width=4,
            height=3,
        ),
    )


def test_an_event_round_trips_through_its_detail_type() -> None:
    event = accepted()
    parsed = parse_event("MediaAccepted", json.loads(event.model_dump_json()))
    assert parsed == event


def test_an_unknown_schema_version_is_refused_with_a_clear_error() -> None:
    detail = json.loads(accepted().model_dump_json()) | {"schema_version": 2}
    with pytest.raises(ValueError, match="schema_version 2 is not supported"):
        parse_event("MediaAccepted", detail)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    detail = json.loads(accepted().model_dump_json()) | {"added_later": 1}
    assert parse_event("MediaAccepted", detail) == accepted()


def test_the_aws_documented_object_created_event_parses() -> None:
    event = parse_s3_object_created((EVENTS / "s3-object-created.json").read_text())
    assert event.detail.bucket.name == "amzn-s3-demo-bucket1"
    assert event.detail.object.key == "example-key"
    assert event.detail.object.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert event.detail.object.etag == "b1946ac92492d2347c6235b4d2611184"


def test_the_moto_object_created_event_parses_with_its_etag_casing() -> None:
    event = parse_s3_object_created((EVENTS / "s3-object-created-moto.json").read_text())
    assert event.detail.object.etag == "5d41402abc4b2a76b9719d911017c592"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("{", "not JSON"),
        ("[]", "not an EventBridge event"),
        (
            json.dumps(
                {
                    "id": "1",
                    "detail-type": "MediaAccepted",
                    "source": "brandlens.ingest",
                    "detail": {},
                }
            ),
            "expected an aws.s3 'Object Created' event",
        ),
    ],
)
def test_bad_bodies_fail_with_a_message(body: str, match: str) -> None:
    with pytest.raises(InvalidMessageError, match=match):
        parse_s3_object_created(body)


def test_a_catalog_event_of_the_wrong_type_names_the_rule_to_check() -> None:
    body = json.dumps(
        {
            "id": "1",
            "detail-type": "MediaAccepted",
            "source": "brandlens.ingest",
            "detail": json.loads(accepted().model_dump_json()),
        }
    )
    assert parse_catalog_event(body).event == accepted()
    from brandlens_core.events import FramesExtracted

    with pytest.raises(InvalidMessageError, match="check the EventBridge rule"):
        parse_catalog_event(body, accept=(FramesExtracted,))


def entry(detail_bytes: int) -> dict[str, object]:
    return {"Source": "s", "DetailType": "T", "Detail": "x" * detail_bytes, "EventBusName": "b"}


def test_publisher_batches_hold_at_most_ten_entries() -> None:
    batches = _batches([entry(10) for _ in range(23)])
    assert [len(b) for b in batches] == [MAX_ENTRIES_PER_CALL, MAX_ENTRIES_PER_CALL, 3]


def test_publisher_batches_respect_the_request_size_limit() -> None:
    batches = _batches([entry(100_000) for _ in range(5)])
    assert [len(b) for b in batches] == [2, 2, 1]


def test_an_event_over_the_size_limit_is_refused_before_sending() -> None:
    with pytest.raises(PublishError, match="put large payloads in S3"):
        _batches([entry(300_000)])
