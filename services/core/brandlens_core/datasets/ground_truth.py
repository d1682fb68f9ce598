"""SageMaker Ground Truth bounding-box manifests (= Rekognition Custom Labels training
manifests) and Ground Truth video frame object detection output.

A bounding-box manifest is JSON Lines, one image per line::

    {"source-ref": "s3://bucket/frames/job1/000012.jpg",
     "bounding-box": {"image_size": [{"width": 1280, "height": 720, "depth": 3}],
                      "annotations": [{"class_id": 0, "left": 86, "top": 65,
                                       "width": 220, "height": 334}]},
     "bounding-box-metadata": {"objects": [{"confidence": 1}], "class-map": {"0": "acme"},
                               "type": "groundtruth/object-detection", "human-annotated": "yes",
                               "creation-date": "2026-11-21T10:00:00",
                               "job-name": "labeling-job/acme-1"}}

A line whose ``annotations`` list is empty is a negative example. The class-map is
per line; labels are merged by name across lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from brandlens_core.datasets.base import (
    Box,
    BoxFields,
    Dataset,
    ImageAnnotations,
    as_number,
    as_positive_int,
    check_box,
    check_box_count,
    check_source_ref,
    describe_type,
    finish_dataset,
    json_number,
    validate_dataset,
)
from brandlens_core.datasets.errors import DEFAULT_MAX_ERRORS, DatasetError, ErrorCollector

OBJECT_DETECTION_TYPE = "groundtruth/object-detection"
VIDEO_OBJECT_DETECTION_TYPE = "groundtruth/video-object-detection"
VIDEO_OBJECT_TRACKING_TYPE = "groundtruth/video-object-tracking"
_VIDEO_ANNOTATION_KEYS = {
    VIDEO_OBJECT_DETECTION_TYPE: "detection-annotations",
    VIDEO_OBJECT_TRACKING_TYPE: "tracking-annotations",
}
METADATA_SUFFIX = "-metadata"


def _label_attributes(line: Mapping[str, Any], types: set[str]) -> list[str]:
    """Keys whose ``<key>-metadata`` sibling has one of ``types``."""
    found = []
    for key in line:
        metadata = line.get(f"{key}{METADATA_SUFFIX}")
        if isinstance(metadata, dict) and metadata.get("type") in types:
            found.append(key)
    return found


def _find_attribute(
    errors: ErrorCollector,
    line_obj: Mapping[str, Any],
    attribute: str | None,
    types: set[str],
    *,
    line: int | None,
) -> str | None:
    if attribute is not None:
        return attribute
    candidates = _label_attributes(line_obj, types)
    wanted = " or ".join(sorted(types))
    if not candidates:
        errors.add(
            f"no label attribute: no key has a '<attribute>-metadata' sibling of type {wanted}",
            line=line,
        )
        return None
    if len(candidates) > 1:
        errors.add(
            f"several label attributes of type {wanted} ({', '.join(candidates)}); "
            "pass attribute= to choose one",
            line=line,
        )
        return None
    return candidates[0]


def _class_map(
    errors: ErrorCollector, value: object, *, line: int | None, field: str
) -> dict[str, str] | None:
    """The class-map as {"0": "acme"}; keys are the decimal class ids. ``None`` if invalid."""
    if not isinstance(value, dict):
        errors.add(f"must be an object, got {describe_type(value)}", line=line, field=field)
        return None
    before = len(errors)
    result: dict[str, str] = {}
    for key, name in value.items():
        if not isinstance(key, str) or not key.isdigit() or (len(key) > 1 and key.startswith("0")):
            errors.add(
                f"class-map keys must be non-negative integers, got {key!r}",
                line=line,
                field=field,
            )
            continue
        if not isinstance(name, str) or not name.strip():
            errors.add(
                f"class {key} must map to a non-empty label name, got {describe_type(name)}",
                line=line,
                field=f"{field}.{key}",
            )
            continue
        result[key] = name
    return result if len(errors) == before else None


def _class_key(value: object, *, allow_string: bool) -> str | None:
    """A class id as its class-map key: 3 -> "3" (and "3" -> "3" when strings are allowed)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if allow_string and isinstance(value, str) and value.isdigit():
        return str(int(value))
    return None


def _loads(
    errors: ErrorCollector, text: str | bytes | Mapping[str, Any], *, line: int | None, what: str
) -> Mapping[str, Any] | None:
    if isinstance(text, Mapping):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{what}: " if what else ""
        errors.add(
            f"{where}malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            if line is None
            else f"{where}malformed JSON: {exc.msg} (column {exc.colno})",
            line=line,
        )
        return None
    except UnicodeDecodeError as exc:
        errors.add(f"{what + ': ' if what else ''}not UTF-8 text: {exc.reason}", line=line)
        return None
    if not isinstance(value, dict):
        errors.add(
            f"{what + ': ' if what else ''}expected a JSON object, got {describe_type(value)}",
            line=line,
        )
        return None
    return value


# -- bounding-box manifests ----------------------------------------------------------------


class _LabelMerger:
    """Merges per-line class-maps into the dataset's labels.

    When every line agrees on id -> name (the lines of one Ground Truth job, and
    :func:`write_ground_truth`'s), labels come in class-id order; otherwise in
    first-seen order (ids ascending within a line).
    """

    def __init__(self) -> None:
        self.first_seen: dict[str, None] = {}
        self.by_id: dict[int, str] = {}
        self.id_of: dict[str, int] = {}
        self.consistent = True

    def add(self, class_map: Mapping[str, str]) -> None:
        for key in sorted(class_map, key=int):
            name, class_id = class_map[key], int(key)
            self.first_seen.setdefault(name, None)
            if self.consistent and (
                self.by_id.setdefault(class_id, name) != name
                or self.id_of.setdefault(name, class_id) != class_id
            ):
                self.consistent = False

    def labels(self) -> list[str]:
        if self.consistent:
            return [self.by_id[class_id] for class_id in sorted(self.by_id)]
        return list(self.first_seen)


def read_ground_truth(
    text: str | bytes,
    *,
    attribute: str | None = None,
    clip: bool = False,
    source_ref_scheme: str | None = "s3",
    group_field: str | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> Dataset:
    """Read a Ground Truth bounding-box output manifest (a Rekognition training manifest).

    ``attribute``: the label attribute name; by default each line's is found as the
    key whose ``<key>-metadata`` has type ``groundtruth/object-detection`` (exactly
    one per line). ``source_ref_scheme``: image references must be ``s3://`` URIs
    (``None`` accepts any non-empty string). ``group_field``: a top-level key holding
    the image's group (as :func:`write_ground_truth` writes it), if any.
    Labels are the class-map names: in class-id order when all lines agree on the ids,
    else in first-seen order.

    Raises :class:`DatasetError` listing up to ``max_errors`` problems with their
    1-based line numbers and field paths.
    """
    errors = ErrorCollector(max_errors)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"the manifest is not UTF-8 text: {exc.reason}") from None
    text = text.removeprefix("\ufeff")
    labels = _LabelMerger()
    images: list[ImageAnnotations] = []
    first_line: dict[str, int] = {}
    had_any = False
    # Split on "\n" only: str.splitlines() would also split inside JSON strings that
    # hold raw U+2028 and friends.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        had_any = True
        obj = _loads(errors, raw, line=number, what="")
        if obj is None:
            continue
        image = _read_line(
            errors,
            obj,
            number,
            attribute=attribute,
            clip=clip,
            scheme=source_ref_scheme,
            group_field=group_field,
            labels=labels,
        )
        if image is None:
            continue
        if image.source_ref in first_line:
            errors.add(
                f"duplicate image {image.source_ref!r} "
                f"(first on line {first_line[image.source_ref]})",
                line=number,
                field="source-ref",
            )
            continue
        first_line[image.source_ref] = number
        images.append(image)
    return finish_dataset(errors, labels.labels(), images, had_any_image=had_any)


def _read_line(
    errors: ErrorCollector,
    obj: Mapping[str, Any],
    line: int,
    *,
    attribute: str | None,
    clip: bool,
    scheme: str | None,
    group_field: str | None,
    labels: _LabelMerger,
) -> ImageAnnotations | None:
    before = len(errors)
    if "source-ref" not in obj:
        errors.add("missing required field", line=line, field="source-ref")
        source_ref = None
    else:
        source_ref = check_source_ref(
            errors, obj["source-ref"], scheme, line=line, field="source-ref"
        )
    group: str | None = None
    if group_field is not None and group_field in obj:
        raw_group = obj[group_field]
        if isinstance(raw_group, str) and raw_group:
            group = raw_group
        elif raw_group is not None:
            errors.add(
                f"must be a non-empty string, got {describe_type(raw_group)}",
                line=line,
                field=group_field,
            )
    attr = _find_attribute(errors, obj, attribute, {OBJECT_DETECTION_TYPE}, line=line)
    if attr is None:
        return None
    meta_key = f"{attr}{METADATA_SUFFIX}"
    value = obj.get(attr)
    metadata = obj.get(meta_key)
    if attr not in obj:
        errors.add("missing required field (the label attribute)", line=line, field=attr)
    elif not isinstance(value, dict):
        errors.add(f"must be an object, got {describe_type(value)}", line=line, field=attr)
    if meta_key not in obj:
        errors.add("missing required field", line=line, field=meta_key)
    elif not isinstance(metadata, dict):
        errors.add(f"must be an object, got {describe_type(metadata)}", line=line, field=meta_key)
    if not isinstance(value, dict) or not isinstance(metadata, dict):
        return None

    kind = metadata.get("type")
    if kind is None:
        errors.add("missing required field", line=line, field=f"{meta_key}.type")
    elif kind != OBJECT_DETECTION_TYPE:
        errors.add(
            f"expected {OBJECT_DETECTION_TYPE!r}, got {kind!r}", line=line, field=f"{meta_key}.type"
        )
    class_map: dict[str, str] | None = None
    if "class-map" not in metadata:
        errors.add("missing required field", line=line, field=f"{meta_key}.class-map")
    else:
        class_map = _class_map(
            errors, metadata["class-map"], line=line, field=f"{meta_key}.class-map"
        )

    width = height = None
    sizes = value.get("image_size")
    size_field = f"{attr}.image_size"
    if "image_size" not in value:
        errors.add("missing required field", line=line, field=size_field)
    elif not isinstance(sizes, list) or not sizes or not isinstance(sizes[0], dict):
        errors.add(
            "must be a list holding one {width, height, depth} object", line=line, field=size_field
        )
    else:
        size = sizes[0]
        for name in ("width", "height"):
            if name not in size:
                errors.add("missing required field", line=line, field=f"{size_field}[0].{name}")
        if "width" in size:
            width = as_positive_int(
                errors, size["width"], line=line, field=f"{size_field}[0].width"
            )
        if "height" in size:
            height = as_positive_int(
                errors, size["height"], line=line, field=f"{size_field}[0].height"
            )

    annotations = value.get("annotations")
    ann_field = f"{attr}.annotations"
    if "annotations" not in value:
        errors.add("missing required field", line=line, field=ann_field)
        annotations = None
    elif not isinstance(annotations, list):
        errors.add(f"must be a list, got {describe_type(annotations)}", line=line, field=ann_field)
        annotations = None
    if annotations is not None:
        check_box_count(errors, len(annotations), line=line, field=ann_field)
        objects = metadata.get("objects")
        if objects is not None and (
            not isinstance(objects, list) or len(objects) != len(annotations)
        ):
            count = len(objects) if isinstance(objects, list) else describe_type(objects)
            errors.add(
                f"must list one {{confidence}} object per annotation: "
                f"{len(annotations)} annotations, objects is {count}",
                line=line,
                field=f"{meta_key}.objects",
            )

    if class_map is not None:
        labels.add(class_map)

    boxes: list[Box] = []
    for index, annotation in enumerate(annotations or []):
        prefix = f"{ann_field}[{index}]"
        box = _read_box(
            errors,
            annotation,
            class_map,
            line=line,
            prefix=prefix,
            class_field="class_id",
            allow_string_ids=False,
            image_width=width,
            image_height=height,
            clip=clip,
            source=None,
        )
        if box is not None:
            boxes.append(box)
    if len(errors) > before or source_ref is None or width is None or height is None:
        return None
    return ImageAnnotations(source_ref, width, height, boxes, group)


def _read_box(
    errors: ErrorCollector,
    annotation: object,
    class_map: Mapping[str, str] | None,
    *,
    line: int | None,
    prefix: str,
    class_field: str,
    allow_string_ids: bool,
    image_width: int | None,
    image_height: int | None,
    clip: bool,
    source: str | None,
) -> Box | None:
    if not isinstance(annotation, dict):
        errors.add(
            f"must be an object, got {describe_type(annotation)}",
            line=line,
            field=prefix,
            source=source,
        )
        return None
    missing = [
        name for name in (class_field, "left", "top", "width", "height") if name not in annotation
    ]
    for name in missing:
        errors.add("missing required field", line=line, field=f"{prefix}.{name}", source=source)
    if missing:
        return None
    label: str | None = None
    raw_id = annotation[class_field]
    key = _class_key(raw_id, allow_string=allow_string_ids)
    if key is None:
        shown = repr(raw_id) if isinstance(raw_id, int | str) else describe_type(raw_id)
        errors.add(
            f"must be a non-negative integer class id, got {shown}",
            line=line,
            field=f"{prefix}.{class_field}",
            source=source,
        )
    elif class_map is not None:
        if key in class_map:
            label = class_map[key]
        else:
            known = ", ".join(sorted(class_map, key=int)) or "none"
            errors.add(
                f"class id {key} is not in the class-map (ids: {known})",
                line=line,
                field=f"{prefix}.{class_field}",
                source=source,
            )
    numbers = [
        as_number(errors, annotation[name], line=line, field=f"{prefix}.{name}", source=source)
        for name in ("left", "top", "width", "height")
    ]
    left, top, width, height = numbers
    if label is None or image_width is None or image_height is None:
        return None
    if left is None or top is None or width is None or height is None:
        return None
    return check_box(
        errors,
        label=label,
        left=left,
        top=top,
        width=width,
        height=height,
        image_width=image_width,
        image_height=image_height,
        clip=clip,
        line=line,
        fields=BoxFields(prefix),
        source=source,
    )


def _creation_date(value: datetime | str | None) -> str:
    if isinstance(value, str):
        return value
    moment = value or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def write_ground_truth(
    dataset: Dataset,
    attribute: str = "bounding-box",
    *,
    job_name: str = "labeling-job/brandlens",
    creation_date: datetime | str | None = None,
    human_annotated: bool = True,
    source_ref_scheme: str | None = "s3",
    group_field: str | None = None,
    class_map: Literal["used", "all"] = "used",
    clip: bool = False,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> str:
    """The dataset as a Ground Truth bounding-box output manifest (JSON Lines, ``\\n``-ended).

    Class ids are label indexes on every line. ``class_map="used"`` (the default,
    compact) maps only the classes a line uses (``{}`` on a negative line); ``"all"``
    writes every label on every line, so labels without boxes survive a round trip too.
    Images without boxes become negative lines (empty ``annotations``).
    ``creation_date`` defaults to now (UTC), written as ``YYYY-MM-DDTHH:MM:SS``.
    ``group_field``: also write each image's group under this top-level key (off by
    default: the key is not part of AWS's format).
    The dataset is validated first (:func:`validate_dataset`).
    """
    if (
        not attribute
        or attribute == "source-ref"
        or attribute.endswith(METADATA_SUFFIX)
        or attribute.endswith("-ref")
    ):
        raise DatasetError(
            "the label attribute name must be non-empty, not 'source-ref', and must not end "
            f"with '-metadata' or '-ref', got {attribute!r}",
            field="attribute",
        )
    if group_field is not None and group_field in {
        "source-ref",
        attribute,
        f"{attribute}{METADATA_SUFFIX}",
    }:
        raise DatasetError(
            f"group_field {group_field!r} collides with a manifest key", field="group_field"
        )
    checked = validate_dataset(
        dataset, source_ref_scheme=source_ref_scheme, clip=clip, max_errors=max_errors
    )
    class_ids = {label: index for index, label in enumerate(checked.labels)}
    full_class_map = {str(index): label for index, label in enumerate(checked.labels)}
    date = _creation_date(creation_date)
    lines = []
    for image in checked.images:
        line: dict[str, Any] = {
            "source-ref": image.source_ref,
            attribute: {
                "image_size": [{"width": image.width, "height": image.height, "depth": 3}],
                "annotations": [
                    {
                        "class_id": class_ids[box.label],
                        "left": json_number(box.left),
                        "top": json_number(box.top),
                        "width": json_number(box.width),
                        "height": json_number(box.height),
                    }
                    for box in image.boxes
                ],
            },
            f"{attribute}{METADATA_SUFFIX}": {
                "objects": [{"confidence": 1} for _ in image.boxes],
                "class-map": full_class_map
                if class_map == "all"
                else {
                    str(class_id): checked.labels[class_id]
                    for class_id in sorted({class_ids[box.label] for box in image.boxes})
                },
                "type": OBJECT_DETECTION_TYPE,
                "human-annotated": "yes" if human_annotated else "no",
                "creation-date": date,
                "job-name": job_name,
            },
        }
        if group_field is not None and image.group is not None:
            line[group_field] = image.group
        lines.append(json.dumps(line, allow_nan=False) + "\n")
    return "".join(lines)


# -- video frame object detection ------------------------------------------------------------


def read_ground_truth_video(
    manifest_line_json: str | bytes | Mapping[str, Any],
    seq_label_json: str | bytes | Mapping[str, Any],
    sequence_json: str | bytes | Mapping[str, Any] | None = None,
    *,
    frame_sizes: Mapping[str, tuple[int, int]] | None = None,
    default_size: tuple[int, int] | None = None,
    attribute: str | None = None,
    include_unlabeled_frames: bool = False,
    clip: bool = False,
    source_ref_scheme: str | None = "s3",
    line: int | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> list[ImageAnnotations]:
    """The frames of one Ground Truth video frame object detection (or tracking) task.

    ``manifest_line_json``: the output manifest line (``source-ref`` = the sequence
    file, ``<attribute>-ref`` = the SeqLabel.json URI, ``<attribute>-ref-metadata`` with
    ``class-map`` and type ``groundtruth/video-object-detection``; the attribute is
    found from that type unless given). ``seq_label_json``: the SeqLabel.json content.
    ``sequence_json``: the input sequence file (``prefix``, ``frames``), optional.

    Each frame becomes an image: ``source_ref`` = the sequence's ``prefix`` (or, without
    a sequence file, the folder of the manifest line's ``source-ref``) + the frame file;
    ``group`` = the manifest line's ``source-ref`` (the sequence), so all its frames
    split together.

    Ground Truth does not record frame sizes. Each frame's ``(width, height)`` is taken,
    first found, from ``frame_sizes[source_ref]``, ``frame_sizes[frame file name]``,
    ``width``/``height`` on the sequence file's frame entry or top level (not part of
    AWS's format, accepted when present), then ``default_size``; a frame with none of
    these is an error.

    Frames listed in SeqLabel with no annotations are negatives. With
    ``include_unlabeled_frames`` (needs ``sequence_json``), sequence frames absent from
    SeqLabel are added as negatives too. Frames come back in frame-number order.
    ``line`` (the manifest line's number) is put on every error when given.
    """
    errors = ErrorCollector(max_errors)
    manifest = _loads(errors, manifest_line_json, line=line, what="manifest line")
    seq_label = _loads(errors, seq_label_json, line=line, what="SeqLabel")
    sequence = (
        _loads(errors, sequence_json, line=line, what="sequence file")
        if sequence_json is not None
        else None
    )
    if manifest is None or seq_label is None or (sequence_json is not None and sequence is None):
        errors.fail()
    if include_unlabeled_frames and sequence is None:
        raise DatasetError(
            "include_unlabeled_frames needs the sequence file (sequence_json)",
            line=line,
            field="sequence_json",
        )
    for name, pair in (frame_sizes or {}).items():
        _check_size(errors, pair, line=line, field=f"frame_sizes[{name!r}]")
    if default_size is not None:
        _check_size(errors, default_size, line=line, field="default_size")
    errors.raise_if_any()

    group = check_source_ref(
        errors, manifest.get("source-ref"), source_ref_scheme, line=line, field="source-ref"
    )
    types = set(_VIDEO_ANNOTATION_KEYS)
    attr = _find_attribute(errors, manifest, attribute, types, line=line)
    if attr is None or group is None:
        errors.fail()
    meta_key = f"{attr}{METADATA_SUFFIX}"
    metadata = manifest.get(meta_key)
    if not isinstance(metadata, dict):
        errors.add(
            "missing required field"
            if metadata is None
            else f"must be an object, got {describe_type(metadata)}",
            line=line,
            field=meta_key,
        )
        errors.fail()
    kind = metadata.get("type")
    if kind not in _VIDEO_ANNOTATION_KEYS:
        errors.add(
            f"expected {' or '.join(repr(t) for t in sorted(types))}, got {kind!r}",
            line=line,
            field=f"{meta_key}.type",
        )
        errors.fail()
    annotations_key = _VIDEO_ANNOTATION_KEYS[str(kind)]
    class_map = (
        _class_map(errors, metadata["class-map"], line=line, field=f"{meta_key}.class-map")
        if "class-map" in metadata
        else None
    )
    if class_map is None and "class-map" not in metadata:
        errors.add("missing required field", line=line, field=f"{meta_key}.class-map")

    prefix, sequence_frames = _sequence_frames(errors, sequence, group, line=line)
    errors.raise_if_any()

    entries = seq_label.get(annotations_key)
    if not isinstance(entries, list):
        errors.add(
            "missing required field"
            if entries is None
            else f"must be a list, got {describe_type(entries)}",
            line=line,
            field=f"SeqLabel.{annotations_key}",
        )
        errors.fail()

    frames: dict[str, tuple[int, ImageAnnotations]] = {}
    for index, entry in enumerate(entries):
        where = f"SeqLabel.{annotations_key}[{index}]"
        frame = _read_frame(
            errors,
            entry,
            where,
            class_map,
            prefix=prefix,
            group=group,
            sequence=sequence,
            sequence_frames=sequence_frames,
            frame_sizes=frame_sizes or {},
            default_size=default_size,
            clip=clip,
            scheme=source_ref_scheme,
            line=line,
        )
        if frame is None:
            continue
        name, number, image = frame
        if name in frames:
            errors.add(f"frame {name!r} is listed twice", line=line, field=f"{where}.frame")
            continue
        frames[name] = (number, image)
    if include_unlabeled_frames:
        for name, (number, _entry) in sequence_frames.items():
            if name in frames:
                continue
            ref = prefix + name
            size = _frame_size(
                errors,
                ref,
                name,
                sequence,
                sequence_frames,
                frame_sizes or {},
                default_size,
                line=line,
            )
            if size is not None:
                frames[name] = (number, ImageAnnotations(ref, size[0], size[1], [], group))
    errors.raise_if_any()
    return [image for _number, image in sorted(frames.values(), key=lambda item: item[0])]


def _check_size(errors: ErrorCollector, size: object, *, line: int | None, field: str) -> None:
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in size)
    ):
        errors.add("must be a (width, height) pair of positive integers", line=line, field=field)


def _sequence_frames(
    errors: ErrorCollector,
    sequence: Mapping[str, Any] | None,
    sequence_ref: str,
    *,
    line: int | None,
) -> tuple[str, dict[str, tuple[int, Mapping[str, Any]]]]:
    """The frame prefix and {frame file: (frame-no, entry)} from the sequence file."""
    if sequence is None:
        return sequence_ref.rsplit("/", 1)[0] + "/", {}
    prefix = sequence.get("prefix")
    if not isinstance(prefix, str) or not prefix:
        errors.add(
            "missing required field" if prefix is None else "must be a non-empty string",
            line=line,
            field="sequence.prefix",
        )
        prefix = ""
    elif not prefix.endswith("/"):
        prefix += "/"
    frames: dict[str, tuple[int, Mapping[str, Any]]] = {}
    raw_frames = sequence.get("frames")
    if not isinstance(raw_frames, list):
        errors.add(
            "missing required field" if raw_frames is None else "must be a list",
            line=line,
            field="sequence.frames",
        )
        return prefix, frames
    for index, entry in enumerate(raw_frames):
        where = f"sequence.frames[{index}]"
        if not isinstance(entry, dict):
            errors.add(f"must be an object, got {describe_type(entry)}", line=line, field=where)
            continue
        name = entry.get("frame")
        number = _frame_number(entry.get("frame-no"))
        if not isinstance(name, str) or not name:
            errors.add("must be a non-empty frame file name", line=line, field=f"{where}.frame")
            continue
        if number is None:
            errors.add("must be a non-negative integer", line=line, field=f"{where}.frame-no")
            continue
        frames[name] = (number, entry)
    return prefix, frames


def _frame_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _frame_size(
    errors: ErrorCollector,
    ref: str,
    name: str,
    sequence: Mapping[str, Any] | None,
    sequence_frames: Mapping[str, tuple[int, Mapping[str, Any]]],
    frame_sizes: Mapping[str, tuple[int, int]],
    default_size: tuple[int, int] | None,
    *,
    line: int | None,
) -> tuple[int, int] | None:
    if ref in frame_sizes:
        return frame_sizes[ref]
    if name in frame_sizes:
        return frame_sizes[name]
    candidates: list[tuple[Mapping[str, Any], str]] = []
    if name in sequence_frames:
        candidates.append((sequence_frames[name][1], f"sequence.frames[{name!r}]"))
    if sequence is not None:
        candidates.append((sequence, "sequence"))
    for holder, where in candidates:
        if "width" in holder or "height" in holder:
            width = as_positive_int(errors, holder.get("width"), line=line, field=f"{where}.width")
            height = as_positive_int(
                errors, holder.get("height"), line=line, field=f"{where}.height"
            )
            if width is None or height is None:
                return None
            return width, height
    if default_size is not None:
        return default_size
    errors.add(
        f"no image size for frame {name!r}: Ground Truth does not record it; "
        "pass frame_sizes or default_size",
        line=line,
        field="frame_sizes",
    )
    return None


def _read_frame(
    errors: ErrorCollector,
    entry: object,
    where: str,
    class_map: Mapping[str, str] | None,
    *,
    prefix: str,
    group: str,
    sequence: Mapping[str, Any] | None,
    sequence_frames: Mapping[str, tuple[int, Mapping[str, Any]]],
    frame_sizes: Mapping[str, tuple[int, int]],
    default_size: tuple[int, int] | None,
    clip: bool,
    scheme: str | None,
    line: int | None,
) -> tuple[str, int, ImageAnnotations] | None:
    if not isinstance(entry, dict):
        errors.add(f"must be an object, got {describe_type(entry)}", line=line, field=where)
        return None
    before = len(errors)
    name = entry.get("frame")
    number = _frame_number(entry.get("frame-no"))
    if not isinstance(name, str) or not name:
        errors.add(
            "missing required field" if name is None else "must be a non-empty frame file name",
            line=line,
            field=f"{where}.frame",
        )
        return None
    if number is None:
        errors.add(
            "missing required field"
            if entry.get("frame-no") is None
            else "must be a non-negative integer (or its decimal string)",
            line=line,
            field=f"{where}.frame-no",
        )
    if sequence is not None and name not in sequence_frames:
        errors.add(f"frame {name!r} is not in the sequence file", line=line, field=f"{where}.frame")
    ref = check_source_ref(errors, prefix + name, scheme, line=line, field=f"{where}.frame")
    annotations = entry.get("annotations", [])
    if not isinstance(annotations, list):
        errors.add(
            f"must be a list, got {describe_type(annotations)}",
            line=line,
            field=f"{where}.annotations",
        )
        return None
    check_box_count(errors, len(annotations), line=line, field=f"{where}.annotations")
    size = _frame_size(
        errors, prefix + name, name, sequence, sequence_frames, frame_sizes, default_size, line=line
    )
    boxes: list[Box] = []
    for index, annotation in enumerate(annotations):
        box = _read_box(
            errors,
            annotation,
            class_map,
            line=line,
            prefix=f"{where}.annotations[{index}]",
            class_field="class-id",
            allow_string_ids=True,
            image_width=size[0] if size else None,
            image_height=size[1] if size else None,
            clip=clip,
            source=None,
        )
        if box is not None:
            boxes.append(box)
    if len(errors) > before or ref is None or size is None or number is None:
        return None
    return name, number, ImageAnnotations(ref, size[0], size[1], boxes, group)
