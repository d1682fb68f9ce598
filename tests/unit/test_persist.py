"""The local stack's durable store (brandlens_cli.persist): what survives, what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from brandlens_cli.main import cli, move_state_aside
from brandlens_cli.persist import FORMAT_VERSION, StateError, Store


def item(job: str, status: str) -> dict[str, object]:
    return {
        "t": "ddb",
        "account": "123456789012",
        "region": "us-east-1",
        "table": "jobs",
        "key": {"job_id": {"S": job}},
        "item": {"job_id": {"S": job}, "status": {"S": status}},
    }


def s3(store: Store, key: str, body: bytes) -> dict[str, object]:
    blob = store.put_blob(body)
    return {
        "t": "s3",
        "account": "123456789012",
        "bucket": "b",
        "key": key,
        "versions": [{"version_id": None, "blob": blob, "size": len(body)}],
    }


def statuses(store: Store) -> dict[str, str]:
    return {
        r["key"]["job_id"]["S"]: r["item"]["status"]["S"]
        for r in store.records.values()
        if r["t"] == "ddb"
    }


def test_the_last_record_of_a_thing_wins_after_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "aws")
    store.open()
    store.append([item("a", "ACCEPTED"), item("b", "ACCEPTED")])
    store.append([item("a", "COMPLETED")])
    store.append([{**item("b", "x"), "item": None}])  # deleted
    store.close(compact=False)  # as a SIGKILL leaves it: journal only, no snapshot

    again = Store(tmp_path / "aws")
    report = again.open()
    assert statuses(again) == {"a": "COMPLETED"}
    assert (report.snapshot_records, report.journal_records, report.torn_tail) == (0, 4, False)
    again.close()  # compacts: the snapshot holds it, the journal is empty
    assert (tmp_path / "aws" / "journal.jsonl").stat().st_size == 0

    third = Store(tmp_path / "aws")
    report = third.open()
    assert statuses(third) == {"a": "COMPLETED"}
    assert (report.snapshot_records, report.journal_records) == (1, 0)


def test_a_torn_last_line_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "aws")
    store.open()
    store.append([item("a", "ACCEPTED"), item("b", "FRAMING")])
    store.close(compact=False)
    journal = tmp_path / "aws" / "journal.jsonl"
    whole = journal.read_bytes()
    journal.write_bytes(whole[: len(whole) - 7])  # the crash cut the second line short

    again = Store(tmp_path / "aws")
    report = again.open()
    assert report.torn_tail
    assert statuses(again) == {"a": "ACCEPTED"}
    again.append([item("c", "ACCEPTED")])  # new lines do not follow the torn one
    again.close(compact=False)
    third = Store(tmp_path / "aws")
    third.open()
    assert statuses(third) == {"a": "ACCEPTED", "c": "ACCEPTED"}


def test_a_damaged_line_with_valid_lines_after_it_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "aws")
    store.open()
    store.append([item("a", "ACCEPTED"), item("b", "FRAMING"), item("c", "FRAMING")])
    store.close(compact=False)
    journal = tmp_path / "aws" / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"FRAMING", b"FRAMINH")  # a flipped bit: CRC no longer fits
    journal.write_bytes(b"".join(lines))
    with pytest.raises(StateError, match="line 2 of 3 is damaged"):
        Store(tmp_path / "aws").open()


def test_a_snapshot_without_its_trailer_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "aws")
    store.open()
    store.append([item("a", "ACCEPTED"), item("b", "FRAMING")])
    store.close()  # compacted into the snapshot
    snapshot = tmp_path / "aws" / "snapshot.jsonl"
    snapshot.write_bytes(b"".join(snapshot.read_bytes().splitlines(keepends=True)[:-1]))
    with pytest.raises(StateError, match="ends before its trailer"):
        Store(tmp_path / "aws").open()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"format": "brandlens-local-state", "version": FORMAT_VERSION + 1}, "newer brandlens"),
        ({"format": "brandlens-local-state", "version": 0}, "reads format 1"),
        ({"format": "something-else", "version": 1}, "is not brandlens state"),
    ],
)
def test_state_of_another_format_is_refused(
    tmp_path: Path, meta: dict[str, object], message: str
) -> None:
    root = tmp_path / "aws"
    root.mkdir()
    (root / "FORMAT.json").write_text(json.dumps(meta))
    (root / "snapshot.jsonl").write_text("")
    with pytest.raises(StateError, match=message):
        Store(root).open()


def test_files_without_a_format_file_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "aws"
    root.mkdir()
    (root / "journal.jsonl").write_text("something\n")
    with pytest.raises(StateError, match=r"no FORMAT\.json"):
        Store(root).open()


def test_object_bodies_are_checked_and_unused_ones_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path / "aws")
    store.open()
    kept = s3(store, "frames/1.jpg", b"frame one")
    store.append([kept, s3(store, "frames/2.jpg", b"frame two")])
    store.append([{**kept, "key": "frames/2.jpg", "versions": []}])  # deleted
    pending = store.put_blob(b"uploaded, record not yet written")
    store.compact()
    names = sorted(p.name for p in (tmp_path / "aws" / "blobs").glob("*/*"))
    blob = kept["versions"][0]["blob"]  # type: ignore[index]
    assert names == sorted([blob, pending])  # frame two's body is gone, the pending one kept
    assert store.read_blob(blob) == b"frame one"
    store.blob_path(blob).write_bytes(b"frame 0ne")
    with pytest.raises(StateError, match="does not match its checksum"):
        store.read_blob(blob)


def test_fresh_moves_the_saved_state_aside_and_keeps_logs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for name in ("aws/snapshot.jsonl", "model-server/x", "logs/moto.log", "reports/j.html"):
        (state / name).parent.mkdir(parents=True, exist_ok=True)
        (state / name).write_text("x")
    (state / "api-key").write_text("blk_x\n")
    moved = move_state_aside(state)
    assert moved is not None
    assert moved.parent == state / "previous"
    assert sorted(p.name for p in moved.iterdir()) == ["api-key", "aws", "model-server"]
    assert sorted(p.name for p in state.iterdir()) == ["logs", "previous", "reports"]
    assert move_state_aside(state) is None  # nothing left to move


def test_up_refuses_state_of_a_newer_format_with_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "aws"
    root.mkdir()
    (root / "FORMAT.json").write_text(
        json.dumps({"format": "brandlens-local-state", "version": 99, "written_by": "brandlens 9"})
    )
    result = CliRunner().invoke(cli, ["up", "--port", "0", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "state format 99 by brandlens 9" in result.output
    assert "--fresh" in result.output
