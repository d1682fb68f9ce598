"""Throughput of the SQS worker runtime against a raw aiobotocore loop.

What it measures
    Messages per second drained from SQS on a local moto server (started
    here, on loopback, with fake credentials) by:

    * **raw**: the baseline, one aiobotocore loop doing
      ``receive_message(MaxNumberOfMessages=10, WaitTimeSeconds=1)`` then
      ``delete_message_batch`` for what it received;
    * **runtime**: ``brandlens_core.worker.Worker`` with a no-op handler
      (decode is the identity on the body), no idempotency and
      ``max_in_flight_messages=K``;
    * **runtime + idempotency** (informational): the same with an
      ``IdempotencyStore`` on a fresh DynamoDB table (hash key ``id``, TTL
      ``expiration``) and one unique key per message (the body).

    It also reports the CPU time of this (client) process per message, which
    isolates the runtime's own overhead from moto's.

Method
    Every pass drains N messages pre-sent with ``send_message_batch`` (not
    timed) to fresh queues of at most ``--backlog`` messages each (default 50),
    drained one queue after the other; a pass's time is the sum over its
    queues of first ``receive_message`` -> last message settled. Why several
    small queues: moto's ReceiveMessage costs O(queue depth) *per message
    received* (it recomputes every queue attribute to check the retention
    period), so draining 2000 messages from one queue takes ~150 s at ~14
    msg/s and measures nothing but moto. Raw and runtime get the same queues.

    Raw stops the clock when the last message is deleted. The runtime (a new
    ``Worker`` per queue, run as a task) stops it when the last receipt is
    deleted and ``stats.succeeded`` has reached the queue's count with nothing
    held (every slot given back); ``stop()`` and ``await run()`` follow,
    untimed.

    moto warms up, and other processes may share the machine, so after an
    untimed warm-up pass raw and runtime passes alternate (raw, runtime, raw,
    runtime: ``--rounds``, default 2) and the best pass of each is kept. The
    idempotent runtime runs once, last.

    Both sides call SQS through the same thin counting proxy, which measures
    the messages held at once independently of the runtime: +len(Messages)
    when a receive returns, -len(Entries) when a delete batch returns. The
    runtime's own ``stats.peak_in_flight`` is reported next to it; both must
    stay <= K.

Targets
    runtime / raw >= 0.8, and peak in-flight <= K. A missed target prints
    FAIL but the exit code stays 0: this is a measurement.

Run
    .venv/bin/python bench/worker_runtime.py [--messages N] [--in-flight K]
        [--backlog B] [--rounds R]

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
from collections.abc import Callable
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
    first_receive_cpu: float = 0.0
    received: int = 0
    deleted: int = 0
    held: int = 0
    peak_held: int = 0
    receive_calls: int = 0
    delete_calls: int = 0
    all_deleted: asyncio.Event = field(default_factory=asyncio.Event)
    all_deleted_at: float | None = None
    all_deleted_cpu: float = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def receive_message(self, **kwargs: Any) -> Any:
        if self.first_receive is None:
            self.first_receive = time.perf_counter()
            self.first_receive_cpu = time.process_time()
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
            self.all_deleted_cpu = time.process_time()
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
    peak_in_flight: int
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us_per_msg(self) -> float:
        """CPU of this (client) process per message, moto excluded."""
        return self.cpu_seconds / self.messages * 1e6


async def fresh_queues(sqs: Client, n: int, backlog: int, tag: str) -> list[tuple[str, int]]:
    """Fresh queues holding n messages in all, at most ``backlog`` each: (url, count)."""
    sem = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(url: str, prefix: str, start: int, count: int) -> None:
        entries = [{"Id": str(i), "MessageBody": f"{prefix}-{start + i}"} for i in range(count)]
        async with sem:
            r = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if r.get("Failed"):
            raise RuntimeError(f"send failed: {r['Failed'][:1]}")

    queues: list[tuple[str, int]] = []
    sends = []
    for first in range(0, n, backlog):
        count = min(backlog, n - first)
        name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
        url = str((await sqs.create_queue(QueueName=name))["QueueUrl"])
        queues.append((url, count))
        sends += [send(url, name, s, min(10, count - s)) for s in range(0, count, 10)]
    await asyncio.gather(*sends)
    return queues


@dataclass
class Totals:
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    messages: int = 0
    receive_calls: int = 0
    delete_calls: int = 0
    peak_held: int = 0
    peak_in_flight: int = 0

    def add(self, c: Counting, seconds: float, cpu: float, peak_in_flight: int = 0) -> None:
        self.seconds += seconds
        self.cpu_seconds += cpu
        self.messages += c.target
        self.receive_calls += c.receive_calls
        self.delete_calls += c.delete_calls
        self.peak_held = max(self.peak_held, c.peak_held)
        self.peak_in_flight = max(self.peak_in_flight, peak_in_flight)

    def result(self, kind: str) -> Pass:
        return Pass(
            kind,
            self.seconds,
            self.messages,
            self.receive_calls,
            self.delete_calls,
            self.peak_held,
            self.peak_in_flight,
            self.cpu_seconds,
        )


async def raw_pass(sqs: Client, n: int, backlog: int) -> Pass:
    totals = Totals()
    for url, count in await fresh_queues(sqs, n, backlog, "raw"):
        c = Counting(sqs, target=count)
        while c.deleted < count:
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
        assert c.first_receive is not None
        assert c.all_deleted_at is not None
        totals.add(c, c.all_deleted_at - c.first_receive, c.all_deleted_cpu - c.first_receive_cpu)
    return totals.result("raw")


async def runtime_pass(
    clients: AwsClients, n: int, k: int, backlog: int, idempotency_table: str | None = None
) -> Pass:
    totals = Totals()
    for url, count in await fresh_queues(clients.sqs, n, backlog, "rt"):
        c = Counting(clients.sqs, target=count)
        seconds, cpu, peak = await drain_with_worker(clients, c, url, k, idempotency_table)
        totals.add(c, seconds, cpu, peak)
    return totals.result("runtime+idem" if idempotency_table else "runtime")


async def noop(message: str, ctx: None) -> None:
    return None


async def drain_with_worker(
    clients: AwsClients, c: Counting, url: str, k: int, idempotency_table: str | None
) -> tuple[float, float, int]:
    """From the first receive until every message is settled: seconds, CPU seconds; peak."""
    store: IdempotencyStore | None = None
    key: Callable[[str], str] | None = None
    if idempotency_table is not None:
        store = IdempotencyStore(clients.dynamodb, idempotency_table, "bench", ttl_seconds=3600)

        def key(body: str) -> str:
            return body  # every body is unique: "<queue name>-<i>"

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
        handle=noop,
        ctx=None,
        settings=settings,
        idempotency=store,
        idempotency_key=key,
    )
    run = asyncio.create_task(worker.run())
    try:
        # No busy polling during the pass: wake when the last receipt is deleted,
        # then let the settling tasks give their slots back.
        drained = asyncio.create_task(c.all_deleted.wait())
        await asyncio.wait({run, drained}, timeout=300, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if run.done():
            run.result()
            raise RuntimeError("worker stopped before draining the queue")
        if not c.all_deleted.is_set():
            raise RuntimeError(f"queue not drained in 300 s ({c.deleted}/{c.target} deleted)")
        # A few loop turns at most: the slots are given back right after the deletes.
        while worker.stats.succeeded < c.target or worker.stats.in_flight > 0:  # noqa: ASYNC110
            await asyncio.sleep(0)
        end, end_cpu = time.perf_counter(), time.process_time()
    finally:
        worker.stop()
        await asyncio.wait_for(run, 30)
    assert c.first_receive is not None
    if worker.stats.failed or worker.stats.duplicates:
        raise RuntimeError(f"unexpected outcomes: {worker.stats}")
    return end - c.first_receive, end_cpu - c.first_receive_cpu, worker.stats.peak_in_flight


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


async def bench(endpoint: str, n: int, k: int, backlog: int, rounds: int) -> dict[str, Any]:
    settings = AwsSettings(endpoint_url=endpoint)  # type: ignore[arg-type]
    async with AwsClients(settings, services=("sqs", "dynamodb")) as clients:
        # Warm the clients and moto's SQS model (not timed, not kept).
        await raw_pass(clients.sqs, 50, backlog)
        raws: list[Pass] = []
        runtimes: list[Pass] = []
        for r in range(rounds):
            for p in (
                await raw_pass(clients.sqs, n, backlog),
                await runtime_pass(clients, n, k, backlog),
            ):
                (raws if p.kind == "raw" else runtimes).append(p)
                print(
                    f"  round {r + 1}  {p.kind:<8} {p.rate:8.1f} msg/s  ({p.seconds:.2f} s, "
                    f"{p.receive_calls} receives, {p.delete_calls} delete batches)",
                    flush=True,
                )
        table = await idempotency_table(clients.dynamodb)
        idem = await runtime_pass(clients, n, k, backlog, idempotency_table=table)
        print(f"  once     {idem.kind:<8} {idem.rate:8.1f} msg/s  ({idem.seconds:.2f} s)")

    raw, rt = max(raws, key=lambda p: p.rate), max(runtimes, key=lambda p: p.rate)
    ratio = rt.rate / raw.rate
    peak = max(p.peak_in_flight for p in [*runtimes, idem])
    peak_seen = max(p.peak_held for p in [*runtimes, idem])
    ratio_ok, bound_ok = ratio >= TARGET_RATIO, peak <= k and peak_seen <= k

    print()
    print(
        f"worker runtime bench: N={n} messages per pass, in-flight bound K={k}, "
        f"best of {rounds}, moto on loopback, {os.cpu_count()} cpus"
    )
    print(f"  {'variant':<24}{'msg/s':>10}{'seconds':>10}{'client CPU us/msg':>20}")
    for label, p in (
        ("raw aiobotocore loop", raw),
        ("runtime", rt),
        ("runtime + idempotency", idem),
    ):
        print(f"  {label:<24}{p.rate:>10.1f}{p.seconds:>10.2f}{p.cpu_us_per_msg:>20.0f}")
    print(f"  ratio runtime/raw {ratio:.3f} (target >= {TARGET_RATIO})        {ok(ratio_ok)}")
    print(f"  peak in-flight {peak} <= bound {k} (runtime stats)       {ok(peak <= k)}")
    print(f"  peak held {peak_seen} <= bound {k} (counted at the SQS client) {ok(peak_seen <= k)}")

    return {
        "messages": n,
        "in_flight_bound": k,
        "backlog_per_queue": backlog,
        "raw_msgs_per_s": round(raw.rate, 1),
        "runtime_msgs_per_s": round(rt.rate, 1),
        "ratio": round(ratio, 3),
        "runtime_with_idempotency_msgs_per_s": round(idem.rate, 1),
        "peak_in_flight": peak,
        "client_cpu_us_per_msg": {
            "raw": round(raw.cpu_us_per_msg),
            "runtime": round(rt.cpu_us_per_msg),
            "runtime_with_idempotency": round(idem.cpu_us_per_msg),
        },
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
    parser.add_argument(
        "--backlog", type=int, default=50, help="messages per fresh queue (moto is O(depth))"
    )
    parser.add_argument("--rounds", type=int, default=2, help="raw/runtime passes, best kept")
    args = parser.parse_args()
    if min(args.messages, args.in_flight, args.backlog, args.rounds) < 1:
        parser.error("--messages, --in-flight, --backlog and --rounds must be positive")

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
        result = asyncio.run(
            bench(server.endpoint_url, args.messages, args.in_flight, args.backlog, args.rounds)
        )
    finally:
        server.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    shown = RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS
    print(f"  passed: {result['passed']}  (written to {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
