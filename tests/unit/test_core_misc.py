"""DynamoDB values, settings, health check."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from brandlens_core.dynamo import from_item, to_item
from brandlens_core.health import check
from brandlens_core.health import main as health_main
from brandlens_core.settings import AwsSettings, StackSettings, worker_settings_for


def test_dynamodb_values_round_trip() -> None:
    value = {"s": "x", "i": 3, "f": 0.25, "b": True, "m": {"l": [1, "a", None]}, "ss": {"a", "b"}}
    assert from_item(to_item(value)) == value


def test_dynamodb_refuses_values_it_cannot_store() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        to_item({"x": float("nan")})
    with pytest.raises(ValueError, match="empty set"):
        to_item({"x": set()})


def test_worker_settings_are_read_under_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLENS_MODEL_MANAGER_WORKER_MAX_IN_FLIGHT_MESSAGES", "3")
    monkeypatch.setenv("BRANDLENS_INGEST_WORKER_MAX_IN_FLIGHT_MESSAGES", "7")
    assert worker_settings_for("model-manager").max_in_flight_messages == 3
    assert worker_settings_for("ingest").max_in_flight_messages == 7
    assert worker_settings_for("framer").max_in_flight_messages == 10


def test_worker_settings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLENS_INGEST_WORKER_WAIT_TIME_SECONDS", "30")
    with pytest.raises(ValueError, match="less than or equal to 20"):
        worker_settings_for("ingest")


def test_endpoints_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRANDLENS_AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL", "http://127.0.0.1:9000")
    settings = AwsSettings()
    assert settings.endpoint_for("sqs") == "http://127.0.0.1:4566"
    assert settings.endpoint_for("rekognition") == "http://127.0.0.1:9000"
    monkeypatch.delenv("BRANDLENS_AWS_ENDPOINT_URL")
    assert AwsSettings().endpoint_for("sqs") is None  # the real AWS endpoint


def test_stack_names_are_validated() -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        StackSettings(stack_name="Bad_Name")


def test_health_check_reads_the_heartbeat_age(tmp_path: Path) -> None:
    beat = tmp_path / "ingest.alive"
    assert check(beat, 60)[0] is False
    beat.touch()
    assert check(beat, 60)[0] is True
    old = time.time() - 120
    os.utime(beat, (old, old))
    ok, message = check(beat, 60)
    assert not ok
    assert "last poll 120s ago" in message
    assert health_main(["--file", str(beat), "--max-age-seconds", "60"]) == 1


def test_the_inferer_holds_two_batches_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brandlens_core.settings import worker_settings_for

    assert worker_settings_for("inferer").max_in_flight_messages == 2
    assert worker_settings_for("framer").max_in_flight_messages == 10
    monkeypatch.setenv("BRANDLENS_INFERER_WORKER_MAX_IN_FLIGHT_MESSAGES", "7")
    assert worker_settings_for("inferer").max_in_flight_messages == 7
