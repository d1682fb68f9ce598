"""The one exception every dataset reader, writer and check raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

DEFAULT_MAX_ERRORS = 20
"""How many problems a reader collects before it stops and raises."""

SHOWN_ERRORS = 3
"""How many of the collected problems ``str(error)`` spells out."""


class DatasetError(ValueError):
    """A dataset that cannot be read, written or split, with where and why.

    ``line`` is 1-based (a JSON Lines manifest, a YOLO ``.txt``, ``data.yaml``);
    ``field`` is a path such as ``bounding-box.annotations[3].left`` or
    ``images[2].boxes[0].width``; ``source`` names the file or image the line or
    field belongs to when that is not obvious (YOLO label files, in-memory
    images). ``errors`` holds every problem found (this one first), up to the
    reader's ``max_errors``; ``truncated`` says the reader stopped early.

    ``str()`` reads like ``line 12, field 'bounding-box.annotations[3].left':
    box extends past the image width (1280): ...``, followed by the next few
    problems when there were several.
    """

    def __init__(
        self,
        message: str,
        line: int | None = None,
        field: str | None = None,
        *,
        source: str | None = None,
        errors: Sequence[DatasetError] | None = None,
        truncated: bool = False,
    ) -> None:
        self.message = message
        self.line = line
        self.field = field
        self.source = source
        self.errors: list[DatasetError] = list(errors) if errors else [self]
        self.truncated = truncated
        super().__init__(message)

    def describe(self) -> str:
        """This one problem, with its location: ``line 3, field 'x': message``."""
        where: list[str] = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        location = ", ".join(where)
        if self.source is not None:
            location = f"{self.source}: {location}" if location else self.source
        return f"{location}: {self.message}" if location else self.message

    def __str__(self) -> str:
        shown = [self.describe()]
        shown += [error.describe() for error in self.errors[1:SHOWN_ERRORS]]
        text = "; ".join(shown)
        more = len(self.errors) - len(shown)
        if more > 0:
            text += f" (and {more} more {'error' if more == 1 else 'errors'})"
        if self.truncated:
            text += f"; stopped after {len(self.errors)} errors"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # Keep line/field/source (and the collected errors) across pickling.
        return (
            _rebuild,
            (self.message, self.line, self.field, self.source, self.errors[1:], self.truncated),
        )


def _rebuild(
    message: str,
    line: int | None,
    field: str | None,
    source: str | None,
    rest: list[DatasetError],
    truncated: bool,
) -> DatasetError:
    error = DatasetError(message, line, field, source=source, truncated=truncated)
    error.errors.extend(rest)
    return error


class ErrorCollector:
    """Collects problems while reading; raises once ``max_errors`` are found."""

    def __init__(self, max_errors: int = DEFAULT_MAX_ERRORS) -> None:
        if max_errors < 1:
            raise ValueError("max_errors must be at least 1")
        self.max_errors = max_errors
        self.errors: list[DatasetError] = []

    def __len__(self) -> int:
        return len(self.errors)

    def add(
        self,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        source: str | None = None,
    ) -> None:
        self.errors.append(DatasetError(message, line, field, source=source))
        if len(self.errors) >= self.max_errors:
            raise self.exception(truncated=True)

    def exception(self, *, truncated: bool = False) -> DatasetError:
        first = self.errors[0]
        return DatasetError(
            first.message,
            first.line,
            first.field,
            source=first.source,
            errors=self.errors,
            truncated=truncated,
        )

    def raise_if_any(self) -> None:
        if self.errors:
            raise self.exception()

    def fail(self) -> NoReturn:
        """Raise what was collected (the caller has just added at least one error)."""
        if not self.errors:
            raise RuntimeError("ErrorCollector.fail() called with no errors")
        raise self.exception()
