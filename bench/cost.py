"""What leases save: a scripted day of jobs, the model's running time and its cost.

The real model-manager (leases, reaper, start/stop through the model-server) runs a
day of analysis jobs with gaps between them, on a clock sped up ``--speed`` times
(default 240: the day takes six minutes; the idle grace of 120 s becomes 0.5 s).
The jobs are played by this script: each takes a lease when it starts (renewing it
while it runs), asks for the model and releases the lease when it ends, as the
inferer does. Measured: the model's running seconds and busy seconds (time with a
live lease), from the manager's own records, scaled back to the day.

Compared, on the same schedule, with:
- an always-on model: 24 h;
- the TTL scheme of the original design: the model starts with the first job and is
  stopped when DynamoDB deletes the job's item, at least 2 minutes after the last use
  (the TTL floor) but up to 48 hours later (AWS: deletion "typically within two days"):
  with that lag a model that ran once in the day runs the rest of the day and beyond.

Resolution: the reaper looks every ``--reap-interval`` real seconds and a start or stop
is noticed within one second (SQS delays are whole seconds): both are printed in day
time. Writes bench/results/cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "cost.json"
sys.path.insert(0, str(ROOT.parent))

DAY = 24 * 3600.0
# (start, minutes) in the day: a morning batch, lunchtime bursts, an evening job
SCHEDULE = [
    ("08:00", 30), ("08:45", 10), ("11:00", 60), ("14:30", 20),
    ("14:55", 5), ("18:00", 45), ("22:10", 15),
]  # fmt: skip
PRICE = 4.0  # USD per inference-unit hour (Rekognition Custom Labels)
TTL_FLOOR = 120.0
TTL_LAG = 48 * 3600.0


def seconds(clock: str) -> float:
    hours, minutes = clock.split(":")
    return int(hours) * 3600.0 + int(minutes) * 60.0


def busy_seconds(schedule: list[tuple[float, float]]) -> float:
    total, end = 0.0, -1.0
    for start, stop in sorted(schedule):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def ttl_running(schedule: list[tuple[float, float]], lag: float) -> float:
    """Running time within the day under TTL stopping: runs from a job's start until
    max(end) + floor + lag, merged over jobs, clipped to the day."""
    intervals = sorted((s, e + TTL_FLOOR + lag) for s, e in schedule)
    return busy_seconds([(s, min(e, DAY)) for s, e in intervals])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.integration.test_model_server_support import ModelServerHarness, rekognition, train
    from tests.support import Stack

    from brandlens_cli.embedded import LOCAL_CREDENTIALS, MotoServer
    from brandlens_core.aws import AwsClients
    from brandlens_core.runtime import RuntimeStore
    from brandlens_core.settings import AwsSettings, WorkerSettings
    from brandlens_core.stack import StackNames, define, deploy
    from brandlens_model_manager.app import create_worker
    from brandlens_model_manager.app import run as run_manager
    from brandlens_model_manager.settings import ModelManagerSettings

    k = args.speed
    os.environ.update(LOCAL_CREDENTIALS | {"AWS_DEFAULT_REGION": "us-east-1"})
    moto = MotoServer()
    moto.start()
    work = Path(tempfile.mkdtemp(prefix="brandlens-bench-cost-"))
    names = StackNames("cost" + uuid.uuid4().hex[:8])
    try:
        async with AwsClients(AwsSettings(endpoint_url=moto.endpoint_url)) as clients:  # type: ignore[arg-type]
            queues = await deploy(clients, define(names))
            stack = Stack(names, queues, clients, moto.endpoint_url)
            harness = ModelServerHarness(stack, work, overrides={"BRANDLENS_LOG_LEVEL": "WARNING"})
            server = await harness.start()
            try:
                async with rekognition(server, max_attempts=3) as client:
                    _, model, _ = await train(client, stack)
                    settings = ModelManagerSettings(
                        idle_grace_seconds=args.idle_grace / k,
                        reap_interval_seconds=args.reap_interval,
                        poll_interval_seconds=1,
                        poll_max_interval_seconds=1,
                        price_per_inference_unit_hour=PRICE,
                    )
                    manager = await create_worker(
                        clients, names, settings,
                        WorkerSettings(wait_time_seconds=1, max_in_flight_messages=4),
                        rekognition=client,
                    )  # fmt: skip
                    task = asyncio.create_task(run_manager(manager, manager.ctx))
                    runtime = RuntimeStore(clients.dynamodb, names.table("runtime"))
                    schedule = [(seconds(t), seconds(t) + m * 60.0) for t, m in SCHEDULE]
                    t0 = time.monotonic()
                    await asyncio.gather(
                        *(
                            play_job(i, s, e, k, t0, model, runtime, clients, queues)
                            for i, (s, e) in enumerate(schedule)
                        )
                    )
                    # the rest of the day: the model should stop after the last job's grace
                    remaining = DAY / k - (time.monotonic() - t0)
                    await asyncio.sleep(max(0.0, remaining))
                    manager.stop()
                    await task
                    state = await runtime.state(model)
            finally:
                await harness.stop_all()
    finally:
        moto.stop()
    running = state.running_seconds * k
    if state.status.value == "RUNNING" and state.started_at:
        running += (time.time() - state.started_at) * k
    busy = busy_seconds(schedule)
    hour_cost = PRICE * state.inference_units / 3600
    return {
        "speed": k,
        "jobs": len(schedule),
        "busy_seconds_scheduled": busy,
        "busy_seconds_measured": round(state.busy_seconds * k, 1),
        "running_seconds": round(running, 1),
        "running_over_busy": round(running / busy, 3),
        "starts": state.start_calls,
        "cost_leases": round(running * hour_cost, 2),
        "cost_always_on": round(DAY * hour_cost, 2),
        "cost_ttl_floor_only": round(ttl_running(schedule, 0.0) * hour_cost, 2),
        "cost_ttl_two_day_lag": round(ttl_running(schedule, TTL_LAG) * hour_cost, 2),
        "resolution_seconds": round(max(args.reap_interval, 1.0) * k, 1),
    }


async def play_job(
    i: int, start: float, end: float, k: float, t0: float, model: str,
    runtime: Any, clients: Any, queues: dict[str, str],
) -> None:  # fmt: skip
    """One job as the inferer runs it: lease, ask for the model, renew, release."""
    await asyncio.sleep(max(0.0, start / k - (time.monotonic() - t0)))
    holder = f"job-{i}"
    lease = 300.0 / k
    ensure = json.dumps({"command": "ensure", "model": model, "holder": holder})
    while time.monotonic() - t0 < end / k:
        await runtime.acquire(model, holder, lease)
        await clients.sqs.send_message(QueueUrl=queues["model-manager"], MessageBody=ensure)
        await asyncio.sleep(min(lease / 3, max(0.0, end / k - (time.monotonic() - t0))))
    await runtime.release(model, holder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=240.0, help="day seconds per real second")
    parser.add_argument("--idle-grace", type=float, default=120.0, help="day seconds")
    parser.add_argument("--reap-interval", type=float, default=0.1, help="real seconds")
    args = parser.parse_args()
    from brandlens_core.logging import configure_logging

    configure_logging("bench", "WARNING", json_output=False)
    r = asyncio.run(run(args))
    resolution = r["resolution_seconds"]
    print(f"a day of {r['jobs']} jobs, clock x{r['speed']:g} (resolution ~{resolution:g} s)")
    print(f"busy (a live lease)        {r['busy_seconds_scheduled'] / 3600:.2f} h scheduled, "
          f"{r['busy_seconds_measured'] / 3600:.2f} h measured")  # fmt: skip
    print(f"model running (leases)     {r['running_seconds'] / 3600:.2f} h = "
          f"{r['running_over_busy']:.3f} x busy, {r['starts']} starts")  # fmt: skip
    print(f"cost with leases           ${r['cost_leases']:.2f}")
    print(f"cost always on (24 h)      ${r['cost_always_on']:.2f}")
    print(f"cost TTL, 2-min floor only ${r['cost_ttl_floor_only']:.2f}")
    print(f"cost TTL, 2-day lag        ${r['cost_ttl_two_day_lag']:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(r | {"at": datetime.now(UTC).isoformat()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
