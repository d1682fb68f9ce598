"""The embedded stack's durable store: what the local AWS emulation holds, on disk.

moto keeps everything in memory. The embedded stack's moto process
(:mod:`brandlens_cli.motoserver`) writes every change it applies to this store and
loads it back on start, so ``brandlens up --state-dir DIR`` keeps projects, media,
labels, models, jobs, results and keys across restarts and crashes.

Layout under ``DIR/aws/``::

    FORMAT.json      what wrote it (format version; refused when unknown)
    snapshot.jsonl   the compacted state, one record per line, with a trailer
    journal.jsonl    changes since the snapshot, appended as they happen
    blobs/ab/<sha256>  S3 object bodies, by content

Every line of the snapshot and the journal is ``<crc32 hex> <json>``. A record is the
whole new state of one thing (an S3 key with all its versions, a DynamoDB item, an SQS
message), never a delta, so replaying a record twice is harmless and the journal can be
replayed over a newer snapshot (a crash between writing the snapshot and truncating the
journal). A line is written to the OS before the request that caused it is answered:
a killed process loses nothing it acknowledged. The journal is fsynced every
``sync_interval`` seconds: a power loss loses at most that much. A body is fsynced
before the record naming it is written, so no record outlives its body. On load a torn
last line is dropped (the write the crash interrupted); a bad line anywhere else, a
snapshot without its trailer or a blob whose bytes do not match its name is refused
with a message, never silently misread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = "brandlens-local-state"
FORMAT_VERSION = 1
# Compact the journal into the snapshot once it is this big (also done at every start
# and clean stop).
COMPACT_JOURNAL_BYTES = 64 * 1024 * 1024


class StateError(RuntimeError):
    """The saved state cannot be used as it is; the message says what to do."""


def record_key(record: dict[str, Any]) -> str:
    """The identity of what a record describes: a later record with the same key wins."""
    kind = record["t"]
    if kind == "s3":
        return f"s3\0{record['account']}\0{record['bucket']}\0{record['key']}"
    if kind == "ddb":
        return f"ddb\0{record['account']}\0{record['region']}\0{record['table']}\0" + json.dumps(
            record["key"], sort_keys=True, separators=(",", ":")
        )
    if kind == "sqs":
        return f"sqs\0{record['account']}\0{record['region']}\0{record['queue']}\0{record['id']}"
    raise StateError(f"unknown record type {kind!r}")


def is_deletion(record: dict[str, Any]) -> bool:
    kind = record["t"]
    if kind == "s3":
        return not record["versions"]
    if kind == "ddb":
        return record["item"] is None
    return record.get("message") is None


def _line(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record on a line, or None when the line is damaged."""
    if not line.endswith(b"\n") or len(line) < 11 or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, lines: Iterable[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for line in lines:
            out.write(line)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


@dataclass
class LoadReport:
    snapshot_records: int = 0
    journal_records: int = 0
    torn_tail: bool = False
    seconds: float = 0.0


@dataclass
class Store:
    """The records of one state directory; thread-safe."""

    root: Path
    sync_interval: float = 1.0
    compact_journal_bytes: int = COMPACT_JOURNAL_BYTES
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _journal: IO[bytes] | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _pending_blobs: set[str] = field(default_factory=set)  # stored, record not yet appended
    _dirty: bool = False
    appended: int = 0

    @property
    def format_file(self) -> Path:
        return self.root / "FORMAT.json"

    @property
    def snapshot_file(self) -> Path:
        return self.root / "snapshot.jsonl"

    @property
    def journal_file(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def blob_dir(self) -> Path:
        return self.root / "blobs"

    # -- opening -------------------------------------------------------------

    def check_format(self) -> bool:
        """True if the directory holds state of this format; False if it is empty.

        Raises StateError for state this version cannot read.
        """
        if not self.root.exists() or not any(self.root.iterdir()):
            return False
        try:
            meta = json.loads(self.format_file.read_text())
        except FileNotFoundError:
            raise StateError(
                f"{self.root} holds files but no FORMAT.json: it was not written by "
                "brandlens, or the write of FORMAT.json was lost. Move it aside "
                "(or start with `brandlens up --fresh`)."
            ) from None
        except ValueError as exc:
            raise StateError(
                f"{self.format_file} is damaged ({exc}); move {self.root} aside "
                "or start with `brandlens up --fresh`"
            ) from None
        if meta.get("format") != FORMAT:
            raise StateError(f"{self.root} is not brandlens state (format {meta.get('format')!r})")
        version = meta.get("version")
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and version > FORMAT_VERSION
            raise StateError(
                f"{self.root} was written in state format {version} by "
                f"{meta.get('written_by', 'another brandlens')}; this brandlens reads format "
                f"{FORMAT_VERSION}. "
                + (
                    "Run the newer brandlens, or start with `brandlens up --fresh` "
                    "(moves the old state aside)."
                    if newer
                    else "Start with `brandlens up --fresh` (moves the old state aside)."
                )
            )
        return True

    def open(self) -> LoadReport:
        """Load the snapshot and replay the journal into ``records``; then append to it."""
        started = time.monotonic()
        report = LoadReport()
        with self._lock:
            existed = self.check_format()
            self.root.mkdir(parents=True, exist_ok=True)
            self.blob_dir.mkdir(exist_ok=True)
            if not existed:
                self._write_format()
            if self.snapshot_file.exists():
                for record in self._read_snapshot():
                    self._apply(record)
                    report.snapshot_records += 1
            if self.journal_file.exists():
                for record in self._read_journal(report):
                    self._apply(record)
                    report.journal_records += 1
            self._journal = self.journal_file.open("ab")
            if report.torn_tail:
                # Drop the torn tail now, so that new lines do not follow a damaged one.
                self.compact()
        report.seconds = time.monotonic() - started
        return report

    def _write_format(self) -> None:
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "written_by": _written_by()}
        _write_atomic(self.format_file, [json.dumps(meta, indent=2).encode() + b"\n"])

    def _read_snapshot(self) -> Iterator[dict[str, Any]]:
        count = 0
        with self.snapshot_file.open("rb") as f:
            for number, line in enumerate(f, 1):
                record = _parse(line)
                if record is None:
                    raise StateError(
                        f"{self.snapshot_file} line {number} is damaged (checksum); the saved "
                        f"state cannot be trusted. Move {self.root} aside or start with "
                        "`brandlens up --fresh`."
                    )
                if record.get("t") == "end":
                    if record.get("records") != count:
                        break
                    return
                count += 1
                yield record
        raise StateError(
            f"{self.snapshot_file} ends before its trailer (a snapshot is written to a new file "
            f"and renamed, so this is damage, not a crash). Move {self.root} aside or start "
            "with `brandlens up --fresh`."
        )

    def _read_journal(self, report: LoadReport) -> Iterator[dict[str, Any]]:
        with self.journal_file.open("rb") as f:
            lines = f.readlines()
        for number, line in enumerate(lines, 1):
            record = _parse(line)
            if record is None:
                if number == len(lines) or not any(x.strip(b"\0\n") for x in lines[number:]):
                    report.torn_tail = True  # the write a crash interrupted
                    return
                raise StateError(
                    f"{self.journal_file} line {number} of {len(lines)} is damaged (checksum) "
                    f"and valid lines follow it; the saved state cannot be trusted. Move "
                    f"{self.root} aside or start with `brandlens up --fresh`."
                )
            yield record

    def _apply(self, record: dict[str, Any]) -> None:
        key = record_key(record)
        if is_deletion(record):
            self.records.pop(key, None)
        else:
            self.records[key] = record

    # -- writing -------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Store an object body durably (fsynced with its directory entry) before any
        record names it, so that no power cut leaves a record without its body; returns
        its name (sha256). About 1.3 ms more than an unsynced write here."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        with self._lock:
            self._pending_blobs.add(digest)  # compaction must not delete it meanwhile
        if path.exists() and path.stat().st_size == len(data):
            return digest
        if not path.parent.exists():
            path.parent.mkdir(exist_ok=True)
            _fsync_dir(self.blob_dir)
        tmp = path.with_name(f"{digest}.{threading.get_ident()}.tmp")
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        _fsync_dir(path.parent)
        return digest

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest[:2] / digest

    def read_blob(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StateError(f"object body {path} is missing") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StateError(f"object body {path} does not match its checksum (damaged)")
        return data

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write records to the journal (to the OS at once) and apply them."""
        with self._lock:
            if self._journal is None:
                raise RuntimeError("the store is not open")
            data = b"".join(_line(r) for r in records)
            if not data:
                return
            self._journal.write(data)
            self._journal.flush()
            self._dirty = True
            for record in records:
                self._apply(record)
                self.appended += 1
                if record["t"] == "s3":
                    self._pending_blobs.difference_update(v.get("blob") for v in record["versions"])
            if self._journal.tell() > self.compact_journal_bytes:
                self.compact()

    def sync(self) -> None:
        """Make what was appended durable (fsync); called every ``sync_interval``."""
        with self._lock:
            dirty, self._dirty = self._dirty, False
            journal = self._journal
        if dirty and journal is not None:
            with contextlib.suppress(ValueError):  # closed meanwhile
                os.fsync(journal.fileno())

    def compact(self) -> None:
        """Write the whole state as the snapshot, empty the journal, delete unused blobs."""
        with self._lock:
            self.sync()
            records = list(self.records.values())
            _write_atomic(
                self.snapshot_file,
                [*(_line(r) for r in records), _line({"t": "end", "records": len(records)})],
            )
            if self._journal is not None:
                self._journal.truncate(0)
                self._journal.seek(0)
                os.fsync(self._journal.fileno())
            else:
                self.journal_file.unlink(missing_ok=True)
            used = {
                v["blob"] for r in records if r["t"] == "s3" for v in r["versions"] if v.get("blob")
            } | self._pending_blobs
            for path in self.blob_dir.glob("*/*"):
                if path.name not in used and not path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)

    def close(self, compact: bool = True) -> None:
        with self._lock:
            if self._journal is None:
                return
            if compact:
                self.compact()
            self.sync()
            self._journal.close()
            self._journal = None


def _written_by() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"brandlens {version('brandlens')}"
    except PackageNotFoundError:
        return "brandlens"


def size_of(root: Path) -> int:
    """Bytes under ``root`` (for ``brandlens up``'s 'state' line)."""
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_size
    return total
