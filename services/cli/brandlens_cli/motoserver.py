"""The embedded stack's AWS emulation: moto's server, DynamoDB atomic, state on disk.

DynamoDB applies each request to an item atomically, so a conditional write has one
winner. moto's server is threaded and its DynamoDB backend takes no lock: eight racing
``ACCEPTED -> FRAMING`` transitions of one job had two winners in 2 runs of 6
(``tests/integration/test_core_stores.py``). brandlens's guarantees rest on that
atomicity (one job per object version, one aggregation per job, each batch counted
once, one training version per dataset), so here DynamoDB requests are served one at a
time. Each takes about a millisecond; the slow requests, SQS long polls, are untouched.

With ``--state-dir DIR`` every change moto applies to S3 objects, DynamoDB items and SQS
messages is also written to :class:`brandlens_cli.persist.Store` under ``DIR`` before the
request is answered (SQS deletions and receive counts within a second), and
``POST /_brandlens/state/restore`` (sent by the embedded stack once it has deployed the
stack's buckets, tables and queues) loads the saved state back into moto. Until then
nothing is recorded, so deploying the resources does not touch the saved state. SIGTERM
or SIGINT saves everything and exits. Why this design: docs/ARCHITECTURE.md, "The local
stack's state".

Run: ``python -m brandlens_cli.motoserver -H 127.0.0.1 -p PORT [--state-dir DIR]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import FakeDeleteMarker, FakeKey, S3Backend, s3_backends
from moto.s3.responses import S3Response
from moto.sqs.models import Message, Queue, sqs_backends
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

from brandlens_cli.persist import LoadReport, StateError, Store, size_of

_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _one_at_a_time(self: DynamoHandler) -> Any:
    with _LOCK:
        result = _call_action(self)
        if PERSISTER is not None and PERSISTER.recording:
            PERSISTER.after_dynamodb(self)
        return result


DynamoHandler.call_action = _one_at_a_time  # type: ignore[method-assign]

# DynamoDB actions that change items, by how the changed items are found.
_ITEM_ACTIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_TABLE_ACTIONS = frozenset(
    {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction", "DeleteTable"}
)
S3_PARTITION = "aws"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _unjsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _unjsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjsonable(v) for v in value]
    return value


class Persister:
    """Records moto's changes into a Store and restores them into moto."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.recording = False
        self._s3_pending = threading.local()
        # queue (account, region, name) -> {message id: receive count} as last recorded
        self._sqs_seen: dict[tuple[str, str, str], dict[str, int]] = {}
        self._sqs_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.load_report: LoadReport | None = None
        self.restore_report: dict[str, Any] = {}

    # -- S3 ------------------------------------------------------------------

    def s3_touched(self, backend: S3Backend, bucket: str, key: str) -> None:
        """A request changed this key: record it when the request is done (metadata set)."""
        pending = getattr(self._s3_pending, "keys", None)
        if pending is None:
            pending = self._s3_pending.keys = set()
        pending.add((backend.account_id, bucket, key))

    def s3_request_done(self) -> None:
        pending = getattr(self._s3_pending, "keys", None)
        if not pending:
            return
        self._s3_pending.keys = set()
        records = [self._s3_record(*item) for item in sorted(pending)]
        self.store.append([r for r in records if r is not None])

    def _s3_record(self, account: str, bucket_name: str, key_name: str) -> dict[str, Any] | None:
        backend = s3_backends[account][S3_PARTITION]
        bucket = backend.buckets.get(bucket_name)
        if bucket is None:
            return None
        versions = [self._s3_version(v) for v in list(bucket.keys.getlist(key_name, []) or [])]
        return {
            "t": "s3",
            "account": account,
            "bucket": bucket_name,
            "key": key_name,
            "versions": versions,
        }

    def _s3_version(self, obj: FakeKey | FakeDeleteMarker) -> dict[str, Any]:
        if isinstance(obj, FakeDeleteMarker):
            return {
                "delete_marker": True,
                "version_id": obj.version_id,
                "last_modified": obj.last_modified.isoformat(),
            }
        blob = getattr(obj, "_brandlens_blob", None)
        if blob is None:
            blob = self.store.put_blob(obj.value)
            obj._brandlens_blob = blob  # type: ignore[attr-defined]  # bodies do not change
        return {
            "version_id": obj._version_id,
            "is_versioned": obj._is_versioned,
            "blob": blob,
            "size": obj.size,
            "etag": obj.etag,
            "last_modified": obj.last_modified.isoformat(),
            "storage": obj._storage_class,
            "metadata": dict(obj._metadata),
            "encryption": obj.encryption,
            "kms_key_id": obj.kms_key_id,
            "checksum": [
                obj.checksum_algorithm,
                obj.checksum_value,
                obj.checksum_type,
                obj.checksum_parts,
            ],
        }

    def _restore_s3(self, record: dict[str, Any]) -> int:
        backend = s3_backends[record["account"]][S3_PARTITION]
        bucket = backend.buckets.get(record["bucket"])
        if bucket is None:
            self.restore_report.setdefault("skipped_buckets", set()).add(record["bucket"])
            return 0
        objects: list[Any] = []
        last: FakeKey | None = None
        for v in record["versions"]:
            if v.get("delete_marker"):
                if last is None:
                    last = FakeKey(record["key"], b"", backend.account_id, backend.region_name)
                marker = FakeDeleteMarker(last)
                marker._version_id = v["version_id"]
                marker.last_modified = datetime.datetime.fromisoformat(v["last_modified"])
                objects.append(marker)
                continue
            data = self.store.read_blob(v["blob"])
            obj = FakeKey(
                record["key"],
                data,
                backend.account_id,
                backend.region_name,
                storage=v["storage"],
                etag=v["etag"].strip('"'),  # saved as served ("<md5>"); FakeKey adds them
                is_versioned=v["is_versioned"],
                version_id=v["version_id"],
                bucket_name=record["bucket"],
                encryption=v["encryption"],
                kms_key_id=v["kms_key_id"],
            )
            obj.last_modified = datetime.datetime.fromisoformat(v["last_modified"])
            obj._metadata.clear()
            obj._metadata.update(v["metadata"])
            (obj.checksum_algorithm, obj.checksum_value, obj.checksum_type, obj.checksum_parts) = v[
                "checksum"
            ]
            obj._brandlens_blob = v["blob"]  # type: ignore[attr-defined]
            objects.append(obj)
            last = obj
            self.restore_report["bytes"] = self.restore_report.get("bytes", 0) + len(data)
        bucket.keys.setlist(record["key"], objects)
        return len(objects)

    # -- DynamoDB ------------------------------------------------------------

    def after_dynamodb(self, handler: DynamoHandler) -> None:
        """Record the items a DynamoDB request may have changed (called under _LOCK)."""
        action = handler._get_action()
        body = handler.body if isinstance(handler.body, dict) else {}
        backend = handler.dynamodb_backend
        touched: list[tuple[str, dict[str, Any] | None]] = []  # (table, key or None: all)
        if action in _ITEM_ACTIONS:
            touched.append((body.get("TableName", ""), body.get("Key") or body.get("Item")))
        elif action == "BatchWriteItem":
            for table, requests in (body.get("RequestItems") or {}).items():
                for request in requests:
                    put, delete = request.get("PutRequest"), request.get("DeleteRequest")
                    touched.append((table, (put or {}).get("Item") or (delete or {}).get("Key")))
        elif action == "TransactWriteItems":
            for item in body.get("TransactItems") or []:
                for kind in ("Put", "Update", "Delete"):
                    if kind in item:
                        op = item[kind]
                        touched.append((op.get("TableName", ""), op.get("Key") or op.get("Item")))
        elif action in _TABLE_ACTIONS:
            touched.extend((name, None) for name in list(backend.tables))
        else:
            return
        records: list[dict[str, Any]] = []
        for table_name, key in touched:
            records.extend(self._ddb_records(backend, table_name, key))
        self.store.append(records)

    def _ddb_records(
        self, backend: Any, table_name: str, key: dict[str, Any] | None
    ) -> Iterable[dict[str, Any]]:
        table = backend.tables.get(table_name)
        if table is None:
            table = next((t for t in backend.tables.values() if t.table_arn == table_name), None)
        if table is None:
            return []
        base = {
            "t": "ddb",
            "account": backend.account_id,
            "region": backend.region_name,
            "table": table.name,
        }
        names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
        if key is not None:
            if any(n not in key for n in names):
                return []
            key = {n: key[n] for n in names}
            item = backend.get_item(table.name, key)
            return [base | {"key": key, "item": item.to_json()["Attributes"] if item else None}]
        # The whole table: every saved item of it, then its current items.
        current = {}
        for item in table.all_items():
            attrs = item.to_json()["Attributes"]
            k = {n: attrs[n] for n in names}
            current[json.dumps(k, sort_keys=True)] = base | {"key": k, "item": attrs}
        prefix = f"ddb\0{backend.account_id}\0{backend.region_name}\0{table.name}\0"
        gone = [
            base | {"key": r["key"], "item": None}
            for k, r in list(self.store.records.items())
            if k.startswith(prefix) and json.dumps(r["key"], sort_keys=True) not in current
        ]
        return [*gone, *current.values()]

    def _restore_ddb(self, record: dict[str, Any]) -> int:
        backend = dynamodb_backends[record["account"]][record["region"]]
        if record["table"] not in backend.tables:
            self.restore_report.setdefault("skipped_tables", set()).add(record["table"])
            return 0
        backend.put_item(record["table"], record["item"])
        return 1

    # -- SQS -----------------------------------------------------------------

    def sqs_added(self, queue: Queue, message: Message) -> None:
        if any(m is message for m in reversed(queue._messages[-64:])):  # not a FIFO duplicate
            with self._sqs_lock:
                seen = self._sqs_seen.setdefault(_queue_id(queue), {})
                seen[message.id] = message.approximate_receive_count
                self.store.append([self._sqs_record(queue, message)])

    def _sqs_record(self, queue: Queue, message: Message | None, mid: str = "") -> dict[str, Any]:
        record = {
            "t": "sqs",
            "account": queue.account_id,
            "region": queue.region,
            "queue": queue.name,
            "id": message.id if message else mid,
        }
        if message is None:
            return record | {"message": None}
        return record | {
            "message": {
                "body": message.body,
                "attributes": _jsonable(message.message_attributes),
                "system_attributes": _jsonable(message.system_attributes),
                "sent_timestamp": message.sent_timestamp,
                "first_receive_timestamp": message.approximate_first_receive_timestamp,
                "receive_count": message.approximate_receive_count,
                "deduplication_id": message.deduplication_id,
                "group_id": message.group_id,
                "sequence_number": message.sequence_number,
                "delayed_until": message.delayed_until,
            }
        }

    def sqs_scan(self) -> None:
        """Record deletions and receive counts (every second, and when stopping)."""
        with self._sqs_lock:
            records = []
            for regions in list(sqs_backends.values()):
                for backend in list(regions.values()):
                    for queue in list(backend.queues.values()):
                        now = {
                            m.id: (m, m.approximate_receive_count) for m in list(queue._messages)
                        }
                        seen = self._sqs_seen.setdefault(_queue_id(queue), {})
                        for mid in [m for m in seen if m not in now]:
                            records.append(self._sqs_record(queue, None, mid))
                            del seen[mid]
                        for mid, (message, count) in now.items():
                            if seen.get(mid) != count:
                                records.append(self._sqs_record(queue, message))
                                seen[mid] = count
            self.store.append(records)

    def _restore_sqs(self, record: dict[str, Any]) -> int:
        backend = sqs_backends[record["account"]][record["region"]]
        queue = backend.queues.get(record["queue"])
        if queue is None:
            self.restore_report.setdefault("skipped_queues", set()).add(record["queue"])
            return 0
        saved = record["message"]
        message = Message(record["id"], saved["body"], _unjsonable(saved["system_attributes"]))
        message.message_attributes = _unjsonable(saved["attributes"])
        message.sent_timestamp = saved["sent_timestamp"]
        message.approximate_first_receive_timestamp = saved["first_receive_timestamp"]
        message.approximate_receive_count = saved["receive_count"]
        message.deduplication_id = saved["deduplication_id"]
        message.group_id = saved["group_id"]
        message.sequence_number = saved["sequence_number"]
        message.delayed_until = saved["delayed_until"]
        # In flight when the stack stopped: its receiver is gone, so visible again now.
        message.visible_at = 0.0
        queue._messages.append(message)
        self._sqs_seen.setdefault(_queue_id(queue), {})[message.id] = (
            message.approximate_receive_count
        )
        return 1

    # -- restore, background sync, stop ------------------------------------------

    def restore(self) -> dict[str, Any]:
        """Load the saved records into moto (its resources deployed) and start recording."""
        if self.recording:
            return self.restore_report
        started = time.monotonic()
        counts = {"s3": 0, "ddb": 0, "sqs": 0}
        restorers: dict[str, Callable[[dict[str, Any]], int]] = {
            "s3": self._restore_s3,
            "ddb": self._restore_ddb,
            "sqs": self._restore_sqs,
        }
        records = sorted(
            self.store.records.values(),
            key=lambda r: (
                (r["t"], r["message"]["sent_timestamp"] or 0) if r["t"] == "sqs" else (r["t"], 0)
            ),
        )
        for record in records:
            counts[record["t"]] += restorers[record["t"]](record)
        self.store.compact()  # the journal folded in, unused blobs gone
        self.recording = True
        report = self.restore_report
        report.update(
            objects=counts["s3"],
            items=counts["ddb"],
            messages=counts["sqs"],
            seconds=round(time.monotonic() - started, 3),
            load_seconds=round(self.load_report.seconds, 3) if self.load_report else 0.0,
            torn_tail=bool(self.load_report and self.load_report.torn_tail),
            bytes_on_disk=size_of(self.store.root),
        )
        for name in ("skipped_buckets", "skipped_tables", "skipped_queues"):
            if name in report:
                report[name] = sorted(report[name])
        self._thread = threading.Thread(target=self._background, name="state-sync", daemon=True)
        self._thread.start()
        return report

    def _background(self) -> None:
        while not self._stop.wait(self.store.sync_interval):
            try:
                self.sqs_scan()
                self.store.sync()
            except Exception as exc:  # keep saving; say why once per failure
                print(f"[brandlens state] sync failed: {exc!r}", file=sys.stderr, flush=True)

    def info(self) -> dict[str, Any]:
        return {
            "dir": str(self.store.root),
            "recording": self.recording,
            "records": len(self.store.records),
            "appended": self.store.appended,
            "sync_interval_seconds": self.store.sync_interval,
        }

    def close(self) -> None:
        self._stop.set()
        if self.recording:
            self.sqs_scan()
            self.store.close(compact=True)
        else:
            self.store.close(compact=False)


def _queue_id(queue: Queue) -> tuple[str, str, str]:
    return (queue.account_id, queue.region, queue.name)


PERSISTER: Persister | None = None


def _install_hooks() -> None:
    """Wrap moto where S3 keys and SQS messages change."""

    def wrap_s3_response(name: str) -> None:
        original = getattr(S3Response, name)

        def wrapper(self: S3Response, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                if PERSISTER is not None and PERSISTER.recording:
                    PERSISTER.s3_request_done()

        setattr(S3Response, name, wrapper)

    for name in ("key_response", "bucket_response"):
        wrap_s3_response(name)

    put_object, delete_object = S3Backend.put_object, S3Backend.delete_object

    def recorded_put(self: S3Backend, bucket_name: str, key_name: str, *a: Any, **kw: Any) -> Any:
        result = put_object(self, bucket_name, key_name, *a, **kw)
        if PERSISTER is not None and PERSISTER.recording:
            PERSISTER.s3_touched(self, bucket_name, key_name)
        return result

    def recorded_delete(
        self: S3Backend, bucket_name: str, key_name: str, *a: Any, **kw: Any
    ) -> Any:
        result = delete_object(self, bucket_name, key_name, *a, **kw)
        if PERSISTER is not None and PERSISTER.recording:
            PERSISTER.s3_touched(self, bucket_name, key_name)
        return result

    S3Backend.put_object = recorded_put  # type: ignore[method-assign]
    S3Backend.delete_object = recorded_delete  # type: ignore[method-assign]

    add_message = Queue.add_message

    def recorded_add(self: Queue, message: Message) -> None:
        add_message(self, message)
        if PERSISTER is not None and PERSISTER.recording:
            PERSISTER.sqs_added(self, message)

    Queue.add_message = recorded_add  # type: ignore[method-assign]


class ControlApp:
    """moto's WSGI app plus ``/_brandlens/state`` (GET: info; POST …/restore)."""

    def __init__(self, app: Any, persister: Persister | None) -> None:
        self.app = app
        self.persister = persister

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_brandlens/state"):
            return self.app(environ, start_response)
        request = Request(environ)
        if self.persister is None:
            body, status = {"error": "this moto server keeps no state (no --state-dir)"}, 404
        elif path == "/_brandlens/state/restore" and request.method == "POST":
            try:
                body, status = self.persister.restore(), 200
            except StateError as exc:
                body, status = {"error": str(exc)}, 409
        elif path == "/_brandlens/state" and request.method == "GET":
            body, status = self.persister.info(), 200
        else:
            body, status = {"error": "not found"}, 404
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        return response(environ, start_response)


def main(argv: list[str]) -> None:
    global PERSISTER
    parser = argparse.ArgumentParser(prog="python -m brandlens_cli.motoserver")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--state-dir", default=None, help="keep S3, DynamoDB and SQS data here")
    parser.add_argument(
        "--sync-interval",
        type=float,
        default=1.0,
        help="seconds between fsyncs of the saved state (power-loss window)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.state_dir:
        store = Store(root=Path(args.state_dir), sync_interval=args.sync_interval)
        try:
            report = store.open()
        except StateError as exc:
            print(f"[brandlens state] {exc}", file=sys.stderr, flush=True)
            sys.exit(3)
        PERSISTER = Persister(store)
        PERSISTER.load_report = report
        _install_hooks()

    def stop(signum: int, frame: Any) -> None:
        if PERSISTER is not None:
            PERSISTER.close()
        os._exit(0)  # werkzeug's threads would otherwise keep serving while we exit

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    run_simple(
        args.host,
        args.port,
        ControlApp(app, PERSISTER),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
