"""The in-memory dataset model and the checks every format shares.

Boxes are absolute pixels from the image's top-left corner (floats allowed).
A validated dataset keeps every box inside its image: a box may overshoot an
edge by at most :data:`EDGE_TOLERANCE_PX` (annotation tools round), and such
an overshoot is clamped to the edge; a larger one is an error, or is clipped
when the reader or writer is called with ``clip=True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from brandlens_core.datasets.errors import DEFAULT_MAX_ERRORS, ErrorCollector

MAX_LABELS = 250
"""Rekognition Custom Labels: at most 250 labels per dataset (and at least one)."""

MAX_BOXES_PER_IMAGE = 50
"""Rekognition Custom Labels: at most 50 bounding boxes per image."""

GROUP_FIELD = "brandlens-group"
"""Top-level manifest key naming an image's group (its video): splits keep groups whole."""

EDGE_TOLERANCE_PX = 1.0
"""How far (pixels) a box may overshoot an image edge before it is an error."""


@dataclass(frozen=True, slots=True)
class Box:
    """One labelled box: absolute pixels, ``left``/``top`` from the top-left corner."""

    label: str
    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


@dataclass(slots=True)
class ImageAnnotations:
    """One image and its boxes; no boxes makes it a negative example.

    ``group`` names the media (video) the frame came from so that splits never
    put frames of one video on both sides; ``None`` means the image is its own group.
    """

    source_ref: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    group: str | None = None

    @property
    def is_negative(self) -> bool:
        return not self.boxes


@dataclass(slots=True)
class Dataset:
    """Labels (their order is the class-id order in every format) and images."""

    labels: list[str]
    images: list[ImageAnnotations]

    @classmethod
    def from_images(
        cls, images: Sequence[ImageAnnotations], labels: Sequence[str] | None = None
    ) -> Dataset:
        """A dataset over ``images``; labels default to the box labels in first-seen order."""
        if labels is None:
            seen: dict[str, None] = {}
            for image in images:
                for box in image.boxes:
                    seen.setdefault(box.label, None)
            labels = list(seen)
        return cls(labels=list(labels), images=list(images))


# -- shared checks ---------------------------------------------------------------------------


def fmt(value: float) -> str:
    """A number for a message: ``1280``, ``12.5``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def describe_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_number(
    errors: ErrorCollector,
    value: object,
    *,
    line: int | None,
    field: str,
    source: str | None = None,
) -> float | None:
    """``value`` as a finite number, or ``None`` after recording why not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.add(
            f"must be a number, got {describe_type(value)}", line=line, field=field, source=source
        )
        return None
    if isinstance(value, float) and not math.isfinite(value):
        errors.add(f"must be a finite number, got {value}", line=line, field=field, source=source)
        return None
    return value


def as_positive_int(
    errors: ErrorCollector,
    value: object,
    *,
    line: int | None,
    field: str,
    source: str | None = None,
) -> int | None:
    """``value`` as an integer > 0 (image sizes), or ``None`` after recording why not."""
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(
            f"must be a positive integer, got {describe_type(value)}",
            line=line,
            field=field,
            source=source,
        )
        return None
    if value <= 0:
        errors.add(
            f"must be a positive integer, got {value}", line=line, field=field, source=source
        )
        return None
    return value


def check_source_ref(
    errors: ErrorCollector,
    value: object,
    scheme: str | None,
    *,
    line: int | None,
    field: str,
    source: str | None = None,
) -> str | None:
    """A non-empty image reference; with ``scheme`` (``"s3"``) a ``scheme://bucket/key`` URI."""
    if not isinstance(value, str) or not value.strip():
        what = "an empty string" if isinstance(value, str) else describe_type(value)
        errors.add(
            f"must be a non-empty image reference, got {what}",
            line=line,
            field=field,
            source=source,
        )
        return None
    if scheme is not None:
        prefix = f"{scheme}://"
        bucket, _, key = value[len(prefix) :].partition("/")
        if not value.startswith(prefix) or not bucket or not key or key.endswith("/"):
            errors.add(
                f"must be an {prefix}bucket/key URI of an image, got {value!r}",
                line=line,
                field=field,
                source=source,
            )
            return None
    return value


def check_labels(
    errors: ErrorCollector, labels: Sequence[object], *, field: str = "labels"
) -> None:
    """1 to :data:`MAX_LABELS` distinct, non-empty label names."""
    if not labels:
        errors.add("a dataset needs at least one label", field=field)
        return
    if len(labels) > MAX_LABELS:
        errors.add(f"{len(labels)} labels; a dataset has at most {MAX_LABELS}", field=field)
    seen: set[str] = set()
    for index, label in enumerate(labels):
        where = f"{field}[{index}]"
        if not isinstance(label, str) or not label.strip():
            errors.add("a label name must be a non-empty string", field=where)
            continue
        try:
            label.encode("utf-8")
        except UnicodeEncodeError:
            errors.add(f"label {label!r} is not valid UTF-8 text", field=where)
            continue
        if label in seen:
            errors.add(f"duplicate label {label!r}", field=where)
        seen.add(label)


def check_box_count(
    errors: ErrorCollector,
    count: int,
    *,
    line: int | None,
    field: str,
    source: str | None = None,
) -> bool:
    if count > MAX_BOXES_PER_IMAGE:
        errors.add(
            f"the image has {count} boxes; at most {MAX_BOXES_PER_IMAGE} are allowed",
            line=line,
            field=field,
            source=source,
        )
        return False
    return True


_BOX_NAMES = ("left", "top", "width", "height")


class BoxFields:
    """The field paths a box's errors are reported under, in its own format's terms.

    Built per box, so the paths are only formatted when there is an error to report.
    """

    __slots__ = ("_names", "_prefix")

    def __init__(self, prefix: str, names: tuple[str, str, str, str] = _BOX_NAMES) -> None:
        self._prefix = prefix
        self._names = names

    def _path(self, index: int) -> str:
        return f"{self._prefix}.{self._names[index]}" if self._prefix else self._names[index]

    @property
    def box(self) -> str:
        return self._prefix or "box"

    @property
    def left(self) -> str:
        return self._path(0)

    @property
    def top(self) -> str:
        return self._path(1)

    @property
    def width(self) -> str:
        return self._path(2)

    @property
    def height(self) -> str:
        return self._path(3)


def _clamp_axis(start: float, size: float, limit: int) -> tuple[float, float]:
    """(start, size) of ``[start, start + size]`` clamped to ``[0, limit]``; exact when inside."""
    end = start + size
    new_start = start if start >= 0 else 0.0
    new_end = end if end <= limit else float(limit)
    if new_start == start and new_end == end:
        return start, size
    return new_start, new_end - new_start


def check_box(
    errors: ErrorCollector,
    *,
    label: str,
    left: float,
    top: float,
    width: float,
    height: float,
    image_width: int,
    image_height: int,
    clip: bool,
    line: int | None,
    fields: BoxFields,
    source: str | None = None,
) -> Box | None:
    """The box inside its image, or ``None`` after recording why it cannot be.

    Overshoots up to :data:`EDGE_TOLERANCE_PX` are clamped; larger ones are errors
    unless ``clip`` (then clamped too). A box with no area left is always an error.
    """
    ok = True
    if width <= 0:
        errors.add(
            f"box width must be positive, got {fmt(width)}",
            line=line,
            field=fields.width,
            source=source,
        )
        ok = False
    if height <= 0:
        errors.add(
            f"box height must be positive, got {fmt(height)}",
            line=line,
            field=fields.height,
            source=source,
        )
        ok = False
    if not ok:
        return None
    tolerance = EDGE_TOLERANCE_PX
    problems: list[tuple[str, str]] = []
    if left < -tolerance:
        problems.append((fields.left, f"box starts left of the image: left {fmt(left)} < 0"))
    if left + width > image_width + tolerance:
        problems.append(
            (
                fields.left,
                f"box extends past the image width ({image_width}): "
                f"left {fmt(left)} + width {fmt(width)} = {fmt(left + width)}",
            )
        )
    if top < -tolerance:
        problems.append((fields.top, f"box starts above the image: top {fmt(top)} < 0"))
    if top + height > image_height + tolerance:
        problems.append(
            (
                fields.top,
                f"box extends past the image height ({image_height}): "
                f"top {fmt(top)} + height {fmt(height)} = {fmt(top + height)}",
            )
        )
    if problems and not clip:
        for where, message in problems:
            errors.add(message, line=line, field=where, source=source)
        return None
    new_left, new_width = _clamp_axis(left, width, image_width)
    new_top, new_height = _clamp_axis(top, height, image_height)
    if new_width <= 0 or new_height <= 0:
        errors.add(
            f"box lies outside the {image_width}x{image_height} image",
            line=line,
            field=fields.box,
            source=source,
        )
        return None
    return Box(label, new_left, new_top, new_width, new_height)


# -- whole-dataset validation ------------------------------------------------------------------


def validate_dataset(
    dataset: Dataset,
    *,
    source_ref_scheme: str | None = None,
    clip: bool = False,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> Dataset:
    """Check an in-memory dataset; returns a copy with edge overshoots clamped.

    Checks: 1 to 250 distinct labels; at least one image; each image a non-empty
    (``source_ref_scheme``: ``scheme://bucket/key``) reference, seen once, with
    positive integer size, at most 50 boxes, each box's label in ``labels`` and the
    box inside the image (1-pixel tolerance; ``clip=True`` clips larger overshoots).
    Errors name ``images[i].boxes[j].field`` and the image's ``source_ref``.
    """
    errors = ErrorCollector(max_errors)
    check_labels(errors, dataset.labels)
    known = set(dataset.labels)
    if not dataset.images:
        errors.add("the dataset has no images", field="images")
    first_seen: dict[str, int] = {}
    images: list[ImageAnnotations] = []
    for index, image in enumerate(dataset.images):
        prefix = f"images[{index}]"
        ref = check_source_ref(
            errors, image.source_ref, source_ref_scheme, line=None, field=f"{prefix}.source_ref"
        )
        source = ref
        if ref is not None:
            if ref in first_seen:
                errors.add(
                    f"duplicate image {ref!r} (also images[{first_seen[ref]}])",
                    field=f"{prefix}.source_ref",
                    source=source,
                )
            else:
                first_seen[ref] = index
        if image.group is not None and not isinstance(image.group, str):
            errors.add(
                f"group must be a string or None, got {describe_type(image.group)}",
                field=f"{prefix}.group",
                source=source,
            )
        width = as_positive_int(
            errors, image.width, line=None, field=f"{prefix}.width", source=source
        )
        height = as_positive_int(
            errors, image.height, line=None, field=f"{prefix}.height", source=source
        )
        check_box_count(errors, len(image.boxes), line=None, field=f"{prefix}.boxes", source=source)
        boxes: list[Box] = []
        for box_index, box in enumerate(image.boxes):
            box_prefix = f"{prefix}.boxes[{box_index}]"
            if box.label not in known:
                errors.add(
                    f"label {box.label!r} is not one of the dataset's labels",
                    field=f"{box_prefix}.label",
                    source=source,
                )
                continue
            values = [
                as_number(
                    errors,
                    getattr(box, name),
                    line=None,
                    field=f"{box_prefix}.{name}",
                    source=source,
                )
                for name in ("left", "top", "width", "height")
            ]
            left, top, box_width, box_height = values
            if width is None or height is None or left is None or top is None:
                continue
            if box_width is None or box_height is None:
                continue
            checked = check_box(
                errors,
                label=box.label,
                left=left,
                top=top,
                width=box_width,
                height=box_height,
                image_width=width,
                image_height=height,
                clip=clip,
                line=None,
                fields=BoxFields(box_prefix),
                source=source,
            )
            if checked is not None:
                boxes.append(checked)
        images.append(
            ImageAnnotations(image.source_ref, image.width, image.height, boxes, image.group)
        )
    errors.raise_if_any()
    return Dataset(labels=list(dataset.labels), images=images)


def finish_dataset(
    errors: ErrorCollector,
    labels: list[str],
    images: list[ImageAnnotations],
    *,
    had_any_image: bool,
) -> Dataset:
    """The common end of every reader: label and emptiness checks, then raise or return.

    No labels or no images after earlier errors is usually their consequence, so it is
    not reported then.
    """
    earlier = bool(errors.errors)
    if labels or not earlier:
        check_labels(errors, labels)
    if not had_any_image and not earlier:
        errors.add("the dataset has no images")
    errors.raise_if_any()
    return Dataset(labels=labels, images=images)


def json_number(value: float) -> int | float:
    """Integral values as JSON integers (``86`` rather than ``86.0``), as AWS writes them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
