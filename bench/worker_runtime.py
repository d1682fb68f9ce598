"""Throughput of the SQS worker runtime against a raw aiobotocore loop.

What it measures
    Messages per second drained from an SQS queue on a local moto server
    (started here, on loopback) by:

    * **raw**: the baseline, one aiobotocore loop doing
      ``receive_message(MaxNumberOfMessages=10, WaitTimeSeconds=1)`` then
      ``delete_message_batch`` for what it received, until N are deleted;
    * **runtime**: ``brandlens_core.worker.Worker`` with a no-op handler
      (decode is the identity on the body), no idempotency and
      ``max_in_flight_messages=K``;
    * **runtime + idempotency** (informational): the same with an
      ``IdempotencyStore`` on a DynamoDB table (hash key ``id``, TTL
      ``expiration``) and one unique key per message.

Method
    Every timed pass drains N messages pre-sent (``send_message_batch``, not
    timed) to a fresh queue. The clock starts when the first
    ``receive_message`` is issued and stops when the N-th message has been
    deleted (raw) or, for the runtime, when ``stats.succeeded`` reaches N and
    nothing is held any more (every receipt deleted, every slot given back).
    The runtime is then stopped (``stop()``, ``await run()``) outside the clock.

    moto warms up (imports, caches), so raw and runtime passes alternate,
    raw, runtime, raw, runtime (``--rounds``, default 2), and the best pass of
    each is kept. The idempotent runtime runs once, last.

    Both sides use the same SQS client class through a thin counting proxy,
    which also measures the number of messages held at once independently of
    the runtime: +len(Messages) when a receive returns, -len(Entries) when a
    delete batch returns. The runtime's own ``stats.peak_in_flight`` is
    reported next to it; both must stay <= K.

Targets
    runtime / raw >= 0.8, and peak in-flight <= K. Missing a target prints
    FAIL but the exit code stays 0: this is a measurement.

Run
    .venv/bin/python bench/worker_runtime.py [--messages N] [--in-flight K] [--rounds R]

Results are printed and written to bench/results/worker_runtime.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from brandlens_cli.embedded import LOCAL_CREDENTIALS, MotoServer
from brandlens_core.aws import AwsClients, Client
from brandlens_core.idempotency import IdempotencyStore
from brandlens_core.logging import configure_logging
from brandlens_core.settings import AwsSettings, WorkerSettings
from brandlens_core.worker import Worker

NAME = "worker_runtime"
RESULTS = Path(__file__).resolve().parent / "results" / f"{NAME}.json"
TARGET_RATIO = 0.8
SEND_CONCURRENCY = 10


@dataclass
class Counting:
    """Wraps an SQS client: counts messages held (received, not yet deleted)."""

    inner: Client
    target: int = 0
    first_receive: float | None = None
    received: int = 0
    deleted: int = 0
    held: int = 0
    peak_held: int = 0
    receive_calls: int = 0
    delete_calls: int = 0
    all_deleted: asyncio.Event = field(default_factory=asyncio.Event)
    all_deleted_at: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def receive_message(self, **kwargs: Any) -> Any:
        if self.first_receive is None:
            self.first_receive = time.perf_counter()
        response = await self.inner.receive_message(**kwargs)
        n = len(response.get("Messages", []))
        self.receive_calls += 1
        self.received += n
        self.held += n
        self.peak_held = max(self.peak_held, self.held)
        return response

    async def delete_message_batch(self, **kwargs: Any) -> Any:
        response = await self.inner.delete_message_batch(**kwargs)
        n = len(kwargs["Entries"])
        self.delete_calls += 1
        self.held -= n
        self.deleted += n - len(response.get("Failed", []))
        if self.deleted >= self.target and not self.all_deleted.is_set():
            self.all_deleted_at = time.perf_counter()
            self.all_deleted.set()
        return response


@dataclass
class Pass:
    kind: str
    seconds: float
    messages: int
    receive_calls: int
    delete_calls: int
    peak_held: int
    peak_in_flight: int | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


async def fresh_queue(sqs: Client, n: int, tag: str) -> str:
    name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    url = str((await sqs.create_queue(QueueName=name))["QueueUrl"])
    sem = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(start: int) -> None:
        entries = [
            {"Id": str(i), "MessageBody": f"{name}-{start + i}"}
            for i in range(min(10, n - start))
        ]
        async with sem:
            r = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if r.get("Failed"):
            raise RuntimeError(f"send failed: {r['Failed'][:1]}")

    await asyncio.gather(*(send(s) for s in range(0, n, 10)))
    return url


async def raw_pass(sqs: Client, n: int) -> Pass:
    url = await fresh_queue(sqs, n, "raw")
    c = Counting(sqs, target=n)
    while c.deleted < n:
        r = await c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = r.get("Messages", [])
        if messages:
            await c.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
    assert c.first_receive is not None and c.all_deleted_at is not None
    return Pass(
        "raw",
        c.all_deleted_at - c.first_receive,
        n,
        c.receive_calls,
        c.delete_calls,
        c.peak_held,
    )


async def runtime_pass(
    clients: AwsClients, n: int, k: int, idempotency_table: str | None = None
) -> Pass:
    sqs = clients.sqs
    url = await fresh_queue(sqs, n, "rt")
    c = Counting(sqs, target=n)

    async def handle(message: str, ctx: None) -> None:
        return None

    store = key = None
    if idempotency_table is not None:
        store = IdempotencyStore(clients.dynamodb, idempotency_table, "bench", ttl_seconds=3600)

        def key(body: str) -> str:
            return body  # every body is unique: "<queue>-<i>"

    settings = WorkerSettings(
        max_in_flight_messages=k,
        wait_time_seconds=1,
        visibility_timeout_seconds=60,
        drain_grace_seconds=5,
    )
    worker: Worker[str, None] = Worker(
        name="bench",
        sqs=c,
        queue_url=url,
        decode=lambda body: body,
        handle=handle,
        ctx=None,
        settings=settings,
        idempotency=store,
        idempotency_key=key,
    )
    run = asyncio.create_task(worker.run())
    try:
        # No busy polling during the pass: wake when the N-th receipt is deleted,
        # then let the settling tasks give their slots back.
        drained = asyncio.create_task(c.all_deleted.wait())
        await asyncio.wait({run, drained}, timeout=300, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if run.done():
            run.result()
            raise RuntimeError("worker stopped before draining the queue")
        if not c.all_deleted.is_set():
            raise RuntimeError(f"queue not drained in 300 s ({c.deleted}/{n} deleted)")
        while worker.stats.succeeded < n or worker.stats.in_flight > 0:
            await asyncio.sleep(0)
        end = time.perf_counter()
    finally:
        worker.stop()
        await asyncio.wait_for(run, 30)
    assert c.first_receive is not None
    if worker.stats.failed or worker.stats.duplicates:
        raise RuntimeError(f"unexpected outcomes: {worker.stats}")
    return Pass(
        "runtime+idem" if idempotency_table else "runtime",
        end - c.first_receive,
        n,
        c.receive_calls,
        c.delete_calls,
        c.peak_held,
        worker.stats.peak_in_flight,
    )


async def idempotency_table(db: Client) -> str:
    name = f"bench-idem-{uuid.uuid4().hex[:8]}"
    await db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    await db.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )
    return name


def ok(flag: bool) -> str:
    return "PASS" if flag else "FAIL"


async def bench(endpoint: str, n: int, k: int, rounds: int) -> dict[str, Any]:
    settings = AwsSettings(endpoint_url=endpoint)  # type: ignore[arg-type]
    async with AwsClients(settings, services=("sqs", "dynamodb")) as clients:
        # Warm the clients and moto's SQS model (not timed, not kept).
        await raw_pass(clients.sqs, 50)
        raws: list[Pass] = []
        runtimes: list[Pass] = []
        for r in range(rounds):
            for p in (await raw_pass(clients.sqs, n), await runtime_pass(clients, n, k)):
                (raws if p.kind == "raw" else runtimes).append(p)
                print(
                    f"  round {r + 1}  {p.kind:<8} {p.rate:8.1f} msg/s  ({p.seconds:.2f} s, "
                    f"{p.receive_calls} receives, {p.delete_calls} delete batches)",
                    flush=True,
                )
        table = await idempotency_table(clients.dynamodb)
        idem = await runtime_pass(clients, n, k, idempotency_table=table)
        print(f"  once     {idem.kind:<8} {idem.rate:8.1f} msg/s  ({idem.seconds:.2f} s)")

    raw, rt = max(raws, key=lambda p: p.rate), max(runtimes, key=lambda p: p.rate)
    ratio = rt.rate / raw.rate
    peak = max(p.peak_in_flight or 0 for p in [*runtimes, idem])
    peak_seen = max(p.peak_held for p in [*runtimes, idem])
    ratio_ok, bound_ok = ratio >= TARGET_RATIO, peak <= k and peak_seen <= k

    print()
    print(f"worker runtime bench: N={n} messages per pass, in-flight bound K={k}, "
          f"best of {rounds}, moto on loopback, {os.cpu_count()} cpus")
    print(f"  {'variant':<24}{'msg/s':>10}{'seconds':>10}")
    print(f"  {'raw aiobotocore loop':<24}{raw.rate:>10.1f}{raw.seconds:>10.2f}")
    print(f"  {'runtime':<24}{rt.rate:>10.1f}{rt.seconds:>10.2f}")
    print(f"  {'runtime + idempotency':<24}{idem.rate:>10.1f}{idem.seconds:>10.2f}")
    print(f"  ratio runtime/raw {ratio:.3f} (target >= {TARGET_RATIO})        {ok(ratio_ok)}")
    print(f"  peak in-flight {peak} <= bound {k} (runtime stats)       {ok(peak <= k)}")
    print(f"  peak held {peak_seen} <= bound {k} (counted at the SQS client) {ok(peak_seen <= k)}")

    return {
        "messages": n,
        "in_flight_bound": k,
        "raw_msgs_per_s": round(raw.rate, 1),
        "runtime_msgs_per_s": round(rt.rate, 1),
        "ratio": round(ratio, 3),
        "runtime_with_idempotency_msgs_per_s": round(idem.rate, 1),
        "peak_in_flight": peak,
        "peak_held_observed": peak_seen,
        "passed": ratio_ok and bound_ok,
        "targets": {"ratio": TARGET_RATIO, "ratio_passed": ratio_ok, "bound_passed": bound_ok},
        "rounds": rounds,
        "passes": {
            "raw_msgs_per_s": [round(p.rate, 1) for p in raws],
            "runtime_msgs_per_s": [round(p.rate, 1) for p in runtimes],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per pass (N)")
    parser.add_argument("--in-flight", type=int, default=10, help="max_in_flight_messages (K)")
    parser.add_argument("--rounds", type=int, default=2, help="raw/runtime passes, best kept")
    args = parser.parse_args()
    if args.messages < 1 or args.in_flight < 1 or args.rounds < 1:
        parser.error("--messages, --in-flight and --rounds must be positive")

    configure_logging("bench", "WARNING")
    for name in [v for v in os.environ if v.startswith(("AWS_", "BRANDLENS_"))]:
        del os.environ[name]
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ |= {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    server = MotoServer()
    server.start()
    try:
        result = asyncio.run(bench(server.endpoint_url, args.messages, args.in_flight, args.rounds))
    finally:
        server.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  passed: {result['passed']}  -> {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
