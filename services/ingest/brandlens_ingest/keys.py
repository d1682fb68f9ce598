"""What an object key says: purpose, project and file name, or why it is refused.

Keys are untrusted. Accepted: ``training/<project>/<name…>`` and
``analysis/<project>/<name…>``, printable UTF-8, no ``.``/``..`` or empty
segments, no percent-escapes that do not decode to UTF-8.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from brandlens_core.events import Purpose

PROJECT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class ParsedKey:
    purpose: Purpose
    project: str
    name: str


class BadKeyError(ValueError):
    def __init__(self, reason: str, purpose: Purpose | None = None, project: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.purpose = purpose
        self.project = project


def printable(key: str) -> str:
    """The key with anything unprintable escaped, safe to log, store and show."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in key)


def _check_text(key: str, what: str) -> None:
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise BadKeyError(f"the {what} is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise BadKeyError(f"the {what} is {len(encoded)} bytes long; the limit is {MAX_KEY_BYTES}")
    for char in key:
        category = unicodedata.category(char)
        if category == "Cc" or (category == "Cf" and char not in "\u200d"):
            raise BadKeyError(
                f"the {what} contains the control character U+{ord(char):04X}; "
                "rename the file using printable characters"
            )
    segments = key.split("/")
    if any(s in (".", "..") for s in segments):
        raise BadKeyError(f"the {what} contains a '.' or '..' path segment")
    if key.startswith("/") or any(s == "" for s in segments[:-1]):
        raise BadKeyError(f"the {what} contains an empty path segment ('//' or a leading '/')")


ANNOTATIONS_DIR = "annotations"


def is_annotations_key(key: str) -> bool:
    """``training/<project>/annotations/<file>``: imported labels, which the labeler reads."""
    parts = key.split("/", 3)
    return len(parts) == 4 and parts[0] == Purpose.TRAINING.value and parts[2] == ANNOTATIONS_DIR


def parse_key(key: str) -> ParsedKey:
    _check_text(key, "key")
    if "%" in key:
        try:
            decoded = unquote(key, errors="strict")
        except UnicodeDecodeError:
            raise BadKeyError("the key contains percent-escapes that are not UTF-8") from None
        _check_text(decoded, "key once percent-decoded")
    parts = key.split("/", 2)
    allowed = ", ".join(f"{p.value}/<project>/<file>" for p in Purpose)
    if len(parts) < 3 or parts[0] not in {p.value for p in Purpose}:
        raise BadKeyError(f"the key is outside the known prefixes; upload to {allowed}")
    purpose = Purpose(parts[0])
    project, name = parts[1], parts[2]
    if not PROJECT_RE.match(project):
        raise BadKeyError(
            f"project name {printable(project)!r} is invalid: use 1-63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit",
            purpose=purpose,
        )
    if not name or name.endswith("/"):
        raise BadKeyError("the key names a folder, not a file", purpose=purpose, project=project)
    return ParsedKey(purpose=purpose, project=project, name=name)
