"""A model endpoint that refuses connections (a model-server restarting) makes the inferer
wait for the model, not fail the batch: failing it would use up the batch's receives and
send it to the DLQ (found by the chaos run, tests/chaos)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from brandlens_cli.embedded import free_port
from brandlens_core.aws import AwsClients
from brandlens_core.messages import FrameBatch, FrameRef
from brandlens_core.settings import AwsSettings
from brandlens_inferer.handler import ModelNotRunningError, detect
from brandlens_inferer.limiter import AdaptiveLimiter
from brandlens_inferer.settings import InfererSettings


async def test_a_refused_connection_is_a_model_not_running() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = AwsSettings(rekognition_endpoint_url=nobody, max_attempts=1)  # type: ignore[arg-type]
    frame = FrameRef(index=0, key="frames/j/000000.jpg", timestamp_ms=0, width=64, height=36)
    batch = FrameBatch(
        batch_id="j:000000",
        batch_index=0,
        job_id="j",
        project="p",
        artifacts_bucket="artifacts",
        frames=[frame],
    )
    limiter = AdaptiveLimiter(rate=10, min_rate=1, max_rate=10, max_in_flight=1)
    async with AwsClients(settings, services=("rekognition",)) as clients:
        ctx = SimpleNamespace(rekognition=clients.get("rekognition"), settings=InfererSettings())
        with pytest.raises(ModelNotRunningError, match="unreachable"):
            await detect(
                frame,
                batch,
                "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1",
                limiter,
                ctx,
            )  # type: ignore[arg-type]
