"""Imported annotations: COCO, YOLO or Ground Truth files matched to training frames.

Files live under ``training/<project>/annotations/`` in the media bucket (the
CLI's ``brandlens annotations PROJECT FILE`` puts them there):

- ``<name>.json``: COCO; ``<name>.manifest`` / ``<name>.jsonl``: Ground Truth output
  manifest (image bounding boxes, or video frame object detection lines whose
  SeqLabel files sit under the same prefix); ``<name>.zip``: YOLO (``data.yaml`` and
  one ``.txt`` per image, anywhere in the archive).

Which frame an entry labels:

- a file named after a training video (``clip.json`` for ``clip.mp4``) labels frames
  of that video; each entry's file name ends with the frame's number in the video,
  counted from 0 (``frame_000123.jpg``, ``000123.png``: how video annotation tools
  export). Frames the framer sampled are matched by that number; other annotated
  frames are not used, and sampled frames without an entry are left out (unknown,
  not negatives).
- a file named after a training image (``shelf.json`` for ``shelf.jpg``) labels that
  image; any other file is a collection whose entries are matched to training images
  by file name (``shelf.jpg``).

Boxes are scaled from the size the annotation declares (COCO ``width``/``height``,
Ground Truth ``image_size``; YOLO is relative) to the frame; a declared size whose
shape does not match the media is an error.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brandlens_core.datasets import (
    Box,
    Dataset,
    DatasetError,
    ImageAnnotations,
    read_coco,
    read_ground_truth,
    read_ground_truth_video,
    read_yolo,
)
from brandlens_core.projects import control_character
from brandlens_labeler.frames import Frame, LabelingError

EXTENSIONS = {
    ".json": "coco",
    ".manifest": "ground-truth",
    ".jsonl": "ground-truth",
    ".zip": "yolo",
}
MAX_ZIP_MEMBERS = 200_000
_TRAILING_NUMBER = re.compile(r"(\d+)$")
ASPECT_TOLERANCE = 0.02
_CANVAS = 1_000_000  # size given to readers of formats that do not record one


def annotations_prefix(project: str) -> str:
    return f"training/{project}/annotations/"


def is_annotation_file(key: str, project: str) -> bool:
    """A file directly under the annotations folder with a known extension; files in
    sub-folders (SeqLabel.json of video output) are read only through a manifest."""
    prefix = annotations_prefix(project)
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    return bool(name) and "/" not in name and posixpath.splitext(name)[1].lower() in EXTENSIONS


def seq_label_refs(data: bytes) -> list[str]:
    """The SeqLabel URIs a Ground Truth video manifest points at (to fetch before parsing)."""
    refs: list[str] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return refs
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue  # the parse proper reports it
        if isinstance(parsed, dict):
            for name, value in parsed.items():
                if name.endswith("-ref") and name != "source-ref" and isinstance(value, str):
                    refs.append(value)
    return refs


def stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


@dataclass
class Entry:
    """One annotated image as the file describes it (declared size, boxes)."""

    name: str  # the file name the annotation gives the image
    width: int | None
    height: int | None
    boxes: list[Box]
    relative: bool = False  # YOLO: boxes are fractions of the image


@dataclass
class AnnotationFile:
    key: str
    format: str
    labels: list[str]
    entries: list[Entry]


@dataclass
class ImportResult:
    images: list[ImageAnnotations] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    unmatched_entries: int = 0
    unlabelled_frames: int = 0
    media_without_annotations: list[str] = field(default_factory=list)


def _fail(key: str, exc: DatasetError | str) -> LabelingError:
    detail = exc.describe() if isinstance(exc, DatasetError) else exc
    return LabelingError(f"annotations file {key}: {detail}")


def parse_file(
    key: str,
    data: bytes,
    *,
    seq_labels: Mapping[str, bytes] | None = None,
    max_zip_bytes: int = 512 << 20,
) -> AnnotationFile:
    """Parse one annotations file; LabelingError naming the file, line and field."""
    kind = EXTENSIONS.get(posixpath.splitext(key)[1].lower())
    if kind is None:
        raise _fail(key, f"unsupported file type; use {', '.join(sorted(EXTENSIONS))}")
    try:
        if kind == "coco":
            parsed = _parse_coco(key, data)
        elif kind == "ground-truth":
            parsed = _parse_ground_truth(key, data, seq_labels or {})
        else:
            parsed = _parse_yolo(key, data, max_zip_bytes)
    except DatasetError as exc:
        raise _fail(key, exc) from None
    except UnicodeDecodeError:
        raise _fail(key, "the file is not UTF-8 text") from None
    for label in parsed.labels:  # labels become brand names: the project's rule applies
        bad = control_character(label)
        if bad is not None:
            raise _fail(
                key,
                f"label {label!r} contains the control character U+{ord(bad):04X}; "
                "use printable characters",
            )
    return parsed


TOO_DEEP = "the JSON is nested too deeply to be annotations"


def _entries_of(dataset: Dataset) -> list[Entry]:
    return [Entry(i.source_ref, i.width, i.height, list(i.boxes)) for i in dataset.images]


def _parse_coco(key: str, data: bytes) -> AnnotationFile:
    try:
        parsed: Any = json.loads(data)
    except json.JSONDecodeError as exc:
        raise _fail(
            key, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:  # found by the bad-input corpus: it used to fail into the DLQ
        raise _fail(key, TOO_DEEP) from None
    if not isinstance(parsed, dict):
        raise _fail(key, "a COCO file is a JSON object with images, annotations, categories")
    dataset = read_coco(parsed)
    return AnnotationFile(key, "coco", dataset.labels, _entries_of(dataset))


def _parse_ground_truth(key: str, data: bytes, seq_labels: Mapping[str, bytes]) -> AnnotationFile:
    text = data.decode("utf-8")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    video_lines = []
    for number, line in lines:
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(key, f"line {number} is not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise _fail(key, f"line {number}: {TOO_DEEP}") from None
        if isinstance(parsed, dict) and any(
            isinstance(v, dict) and str(v.get("type", "")).startswith("groundtruth/video")
            for v in parsed.values()
        ):
            video_lines.append((number, parsed))
    if not video_lines:
        dataset = read_ground_truth(text, source_ref_scheme=None)
        return AnnotationFile(key, "ground-truth", dataset.labels, _entries_of(dataset))
    entries: list[Entry] = []
    labels: list[str] = []
    for number, parsed in video_lines:
        ref_uri = next(
            (v for k, v in parsed.items() if k.endswith("-ref") and k != "source-ref"), None
        )
        if not isinstance(ref_uri, str):
            raise _fail(key, f"line {number}: no <attribute>-ref with the SeqLabel URI")
        seq_label = seq_labels.get(ref_uri)
        if seq_label is None:
            raise _fail(
                key,
                f"line {number}: SeqLabel {ref_uri} not found; upload it under the "
                "same annotations/ folder",
            )
        images = read_ground_truth_video(
            parsed,
            seq_label,
            None,
            default_size=(_CANVAS, _CANVAS),
            source_ref_scheme=None,
            line=number,
        )
        meta = next(
            (v for k, v in parsed.items() if k.endswith("-metadata") and isinstance(v, dict)), {}
        )
        for name in (meta.get("class-map") or {}).values():
            if isinstance(name, str) and name not in labels:
                labels.append(name)
        # Ground Truth video output does not record frame sizes: boxes are in the
        # pixels of the frames the labellers saw, taken to be the video's own size.
        entries.extend(Entry(i.source_ref, None, None, list(i.boxes)) for i in images)
    return AnnotationFile(key, "ground-truth-video", labels, entries)


def _parse_yolo(key: str, data: bytes, max_bytes: int) -> AnnotationFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _fail(key, "not a valid zip archive (YOLO: data.yaml + .txt files)") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise _fail(
                key, f"the archive holds {len(members)} files; the limit is {MAX_ZIP_MEMBERS}"
            )
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise _fail(key, f"the archive unpacks to {total} bytes; the limit is {max_bytes}")
        yamls = [m for m in members if posixpath.basename(m.filename) in ("data.yaml", "data.yml")]
        if len(yamls) != 1:
            raise _fail(key, "a YOLO archive needs exactly one data.yaml with the class names")
        data_yaml = archive.read(yamls[0]).decode("utf-8")
        texts = {
            m.filename: archive.read(m).decode("utf-8")
            for m in members
            if m.filename.lower().endswith(".txt")
            and posixpath.basename(m.filename) != "classes.txt"
        }
    # Normalised boxes: read them on a unit canvas, scale per frame later.
    scale = _CANVAS
    dataset = read_yolo({name: (text, scale, scale) for name, text in texts.items()}, data_yaml)
    entries = [
        Entry(
            image.source_ref,
            None,
            None,
            [
                Box(b.label, b.left / scale, b.top / scale, b.width / scale, b.height / scale)
                for b in image.boxes
            ],
            relative=True,
        )
        for image in dataset.images
    ]
    return AnnotationFile(key, "yolo", dataset.labels, entries)


# -- matching entries to frames ---------------------------------------------------------------


def frame_number(name: str) -> int | None:
    match = _TRAILING_NUMBER.search(stem(name))
    return int(match.group(1)) if match else None


def _is_video(frames: list[Frame]) -> bool:
    return (
        len(frames) > 1
        or any(f.timestamp_ms > 0 for f in frames)
        or (frames[0].source.key.lower().endswith((".mp4", ".mov", ".m4v")) if frames else False)
    )


def _place(entry: Entry, frame: Frame, key: str) -> ImageAnnotations:
    """The entry's boxes in the frame's pixels."""
    if entry.relative:
        sx, sy = float(frame.width), float(frame.height)
    else:
        source_w = frame.source_width or frame.width
        source_h = frame.source_height or frame.height
        w = entry.width or source_w
        h = entry.height or source_h
        if abs(w / h - source_w / source_h) > ASPECT_TOLERANCE * (source_w / source_h):
            raise _fail(
                key,
                f"{entry.name!r} is declared {w}x{h}, but {frame.media_name} is "
                f"{source_w}x{source_h}; boxes must be drawn on the upright media",
            )
        sx, sy = frame.width / w, frame.height / h
    boxes = []
    for box in entry.boxes:
        left, top = box.left * sx, box.top * sy
        right, bottom = (
            min((box.left + box.width) * sx, frame.width),
            min((box.top + box.height) * sy, frame.height),
        )
        left, top = max(left, 0.0), max(top, 0.0)
        if right - left <= 0 or bottom - top <= 0:
            raise _fail(key, f"{entry.name!r}: a {box.label!r} box lies outside the image")
        boxes.append(
            Box(
                box.label,
                round(left, 2),
                round(top, 2),
                round(right - left, 2),
                round(bottom - top, 2),
            )
        )
    return ImageAnnotations(frame.uri, frame.width, frame.height, boxes, group=frame.media_uri)


def match(files: list[AnnotationFile], frames: list[Frame]) -> ImportResult:
    """Labelled frames of a batch from the project's annotation files."""
    by_media: dict[str, list[Frame]] = {}
    for frame in frames:
        by_media.setdefault(frame.media_uri, []).append(frame)
    media_by_stem: dict[str, str] = {}
    images_by_name: dict[str, str] = {}
    for uri, media_frames in by_media.items():
        name = media_frames[0].media_name
        media_by_stem.setdefault(stem(name), uri)
        if not _is_video(media_frames):
            images_by_name.setdefault(name, uri)
    result = ImportResult()
    labelled: dict[str, ImageAnnotations] = {}
    for file in files:
        used = False
        owner = media_by_stem.get(stem(file.key))
        if owner is not None:
            media_frames = by_media[owner]
            if _is_video(media_frames):
                numbered = {f.source_frame: f for f in media_frames if f.source_frame is not None}
                for entry in file.entries:
                    number = frame_number(entry.name)
                    if number is None:
                        raise _fail(
                            file.key,
                            f"cannot tell which frame of {media_frames[0].media_name} "
                            f"{entry.name!r} is: name frames by their number in the video "
                            "(frame_000123.jpg)",
                        )
                    sampled = numbered.get(number)
                    if sampled is None:
                        result.unmatched_entries += 1
                        continue
                    labelled[sampled.uri] = _place(entry, sampled, file.key)
                    used = True
            else:
                frame = media_frames[0]
                picks = [e for e in file.entries if posixpath.basename(e.name) == frame.media_name]
                if not picks and len(file.entries) == 1:
                    picks = file.entries
                if len(picks) != 1:
                    raise _fail(
                        file.key,
                        f"labels the image {frame.media_name} but holds {len(file.entries)} "
                        "entries and none (or several) by that name",
                    )
                labelled[frame.uri] = _place(picks[0], frame, file.key)
                used = True
        else:
            for entry in file.entries:
                image_uri = images_by_name.get(posixpath.basename(entry.name))
                if image_uri is None:
                    result.unmatched_entries += 1
                    continue
                frame = by_media[image_uri][0]
                labelled[frame.uri] = _place(entry, frame, file.key)
                used = True
        if used:
            result.files.append(file.key)
            for label in file.labels:
                if label not in result.labels:
                    result.labels.append(label)
    result.images = [labelled[f.uri] for f in frames if f.uri in labelled]
    result.unlabelled_frames = len(frames) - len(result.images)
    covered = {image.group for image in result.images}
    result.media_without_annotations = sorted(
        by_media[uri][0].media_name for uri in by_media if uri not in covered
    )
    return result
