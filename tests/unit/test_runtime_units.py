"""Inferer and model-manager pure parts: the adaptive rate, message decoding, cost."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from brandlens_core.envelopes import InvalidMessageError
from brandlens_core.messages import FrameBatch
from brandlens_core.runtime import ModelState
from brandlens_inferer.handler import decode, detections_key
from brandlens_inferer.limiter import AdaptiveLimiter
from brandlens_model_manager.handler import Command, cost, project_name_of, version_name_of
from brandlens_model_manager.handler import decode as decode_command
from brandlens_model_manager.settings import ModelManagerSettings

MODEL = "arn:aws:rekognition:us-east-1:123456789012:project/acme/version/ds-1/1700000000000"


def test_throttling_cuts_the_rate_and_successes_win_it_back() -> None:
    limiter = AdaptiveLimiter(rate=20, min_rate=0.5, max_rate=100, max_in_flight=4, decrease=0.5)
    limiter.on_throttle()
    assert limiter.rate == 10
    for _ in range(10):  # a second's worth of successes at 10/s: one more call per second
        limiter.on_success()
    assert limiter.rate == 11
    for _ in range(20):
        limiter.on_throttle()
    assert limiter.rate == 0.5  # never below the floor
    capped = AdaptiveLimiter(rate=1000, min_rate=1, max_rate=50, max_in_flight=4)
    assert capped.rate == 50


async def test_the_limiter_holds_its_rate_and_its_bound() -> None:
    limiter = AdaptiveLimiter(rate=50, min_rate=1, max_rate=50, max_in_flight=3)

    async def call() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.02)

    started = time.monotonic()
    await asyncio.gather(*(call() for _ in range(60)))
    elapsed = time.monotonic() - started
    assert limiter.peak_in_flight <= 3
    assert limiter.calls == 60
    # 60 calls at 50/s, at most 3 at once of 20 ms each: no faster than the rate allows
    assert elapsed >= 59 / 50 * 0.9


def test_inferer_messages() -> None:
    batch = {
        "batch_id": "job-1:000000", "batch_index": 0, "job_id": "job-1", "project": "acme",
        "artifacts_bucket": "b", "frames": [
            {"index": 0, "key": "frames/job-1/000000.jpg", "timestamp_ms": 0, "width": 4,
             "height": 4}
        ], "waited_seconds": 30,
    }  # fmt: skip
    message = decode(json.dumps(batch))
    assert message.batch is not None
    assert message.waited_seconds == 30
    with pytest.raises(InvalidMessageError, match="invalid frame batch"):
        decode(json.dumps(batch | {"frames": []}))
    with pytest.raises(InvalidMessageError, match="should be 'job-1:000000'"):
        decode(json.dumps(batch | {"batch_id": "job-2:000000"}))
    assert FrameBatch.index_of("job-1", "job-1:000012") == 12
    assert FrameBatch.index_of("job-1", "job-10:000012") is None
    assert FrameBatch.index_of("job-1", "job-1:x") is None
    with pytest.raises(InvalidMessageError):
        decode("{not json")
    assert detections_key("job-1", 7) == "detections/job-1/000007.json"


def test_model_manager_commands_and_names() -> None:
    command = decode_command(json.dumps({"command": "ensure", "model": MODEL}))
    assert isinstance(command, Command)
    with pytest.raises(InvalidMessageError):
        decode_command(json.dumps({"command": "ensure", "model": "arn:aws:s3:::bucket"}))
    with pytest.raises(InvalidMessageError):
        decode_command(json.dumps({"command": "explode", "model": MODEL}))
    assert project_name_of(MODEL) == "acme"
    assert version_name_of(MODEL) == "ds-1"


def test_cost_is_units_times_hours_times_price() -> None:
    state = ModelState(model=MODEL, inference_units=2, running_seconds=5400)
    settings = ModelManagerSettings(price_per_inference_unit_hour=4.0)
    assert cost(state, settings) == 12.0  # 1.5 h x 2 units x $4
