"""What an object key says, and which keys are refused."""

from __future__ import annotations

import re

import pytest

from brandlens_core.events import Purpose
from brandlens_ingest.keys import BadKeyError, is_annotations_key, parse_key, printable


@pytest.mark.parametrize(
    ("key", "purpose", "project", "name"),
    [
        ("analysis/acme/shelf.jpg", Purpose.ANALYSIS, "acme", "shelf.jpg"),
        ("training/acme-2/2026/11/ad one.mp4", Purpose.TRAINING, "acme-2", "2026/11/ad one.mp4"),
        ("analysis/a/é-ü.png", Purpose.ANALYSIS, "a", "é-ü.png"),
        ("analysis/acme/a..b.jpg", Purpose.ANALYSIS, "acme", "a..b.jpg"),
    ],
)
def test_good_keys(key: str, purpose: Purpose, project: str, name: str) -> None:
    parsed = parse_key(key)
    assert (parsed.purpose, parsed.project, parsed.name) == (purpose, project, name)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("shelf.jpg", "outside the known prefixes"),
        ("analysis/acme", "outside the known prefixes"),
        ("Analysis/acme/x.jpg", "outside the known prefixes"),
        ("analysis/-acme/x.jpg", "project name"),
        ("analysis/acme/", "names a folder"),
        ("analysis/acme/sub/", "names a folder"),
        ("analysis/acme/../x.jpg", "'..' path segment"),
        ("analysis/acme/./x.jpg", "'.' or '..' path segment"),
        ("analysis//x.jpg", "empty path segment"),
        ("/analysis/acme/x.jpg", "empty path segment"),
        ("analysis/acme/x\n.jpg", "control character U+000A"),
        ("analysis/acme/x\x7f.jpg", "control character U+007F"),
        ("analysis/acme/%2E%2E/x.jpg", "'..' path segment"),
        ("analysis/acme/%C3%28.jpg", "percent-escapes that are not UTF-8"),
        ("analysis/acme/\ud800.jpg", "not valid UTF-8"),
        ("analysis/acme/" + "x" * 1100, "bytes long"),
    ],
)
def test_bad_keys_are_refused_with_a_reason(key: str, reason: str) -> None:
    with pytest.raises(BadKeyError, match=re.escape(reason)):
        parse_key(key)


def test_a_refused_key_still_says_purpose_and_project_when_it_can() -> None:
    with pytest.raises(BadKeyError) as info:
        parse_key("training/acme/")
    assert (info.value.purpose, info.value.project) == (Purpose.TRAINING, "acme")


def test_printable_escapes_what_a_terminal_would_interpret() -> None:
    assert printable("a\x1b[2Jb\u202e\udcff") == "a\\x1b[2Jb\\u202e\\udcff"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("training/acme/annotations/clip.json", True),
        ("training/acme/annotations/clip/SeqLabel.json", True),
        ("training/acme/clip.mp4", False),
        ("analysis/acme/annotations/clip.json", False),
        ("training/acme/sub/annotations/clip.json", False),
    ],
)
def test_annotation_keys_belong_to_the_labeler(key: str, expected: bool) -> None:
    assert is_annotations_key(key) is expected
