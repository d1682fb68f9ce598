"""YOLO detection labels: one ``.txt`` per image and a ``data.yaml`` with the names.

Each ``.txt`` line is ``class x_center y_center width height``, the four numbers
divided by the image width/height; an empty file is a negative image. ``data.yaml``
is read and written with a small built-in subset of YAML (no dependency): top-level
``key: value`` lines, ``names`` as a flow list (``[a, "b c"]``), a block list
(``- a``), or an index mapping (``0: a`` / ``{0: a}``), and ``nc``. Other keys
(``path``, ``train``, ...) are skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from brandlens_core.datasets.base import (
    BoxFields,
    Dataset,
    ImageAnnotations,
    check_box,
    check_box_count,
    check_labels,
    check_source_ref,
    finish_dataset,
    validate_dataset,
)
from brandlens_core.datasets.errors import DEFAULT_MAX_ERRORS, DatasetError, ErrorCollector

DATA_YAML = "data.yaml"
_FIELDS = ("class", "x_center", "y_center", "width", "height")


# -- data.yaml ---------------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` at the start or after a blank)."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index]
    return line


def _split_flow(body: str) -> list[str]:
    """Items of a flow collection body (``a, "b, c", 'd'``), split on unquoted commas."""
    items: list[str] = []
    quote: str | None = None
    current: list[str] = []
    for char in body:
        if quote:
            current.append(char)
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    last = "".join(current).strip()
    if last or items:
        items.append(last)
    if items and items[-1] == "":
        items.pop()  # a trailing comma
    return items


class _YamlError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _scalar(text: str) -> str:
    """A YAML scalar as a string: ``"double"`` (JSON escapes), ``'single'`` or plain."""
    text = text.strip()
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise _YamlError(f"unterminated double-quoted string {text!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise _YamlError(f"unsupported escape in {text!r}") from None
        if not isinstance(value, str):  # pragma: no cover - json.loads of "..." is a str
            raise _YamlError(f"not a string: {text!r}")
        return value
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise _YamlError(f"unterminated single-quoted string {text!r}")
        return text[1:-1].replace("''", "'")
    if text in {"", "~", "null", "Null", "NULL"}:
        raise _YamlError("a name is empty (null)")
    if text[0] in "[]{}&*!|>%@`":
        raise _YamlError(f"unsupported YAML value {text!r}")
    return text


def _index(text: str) -> int:
    key = text.strip()
    if not key.isdigit():
        raise _YamlError(f"names mapping keys must be class indexes, got {key!r}")
    return int(key)


def _names_from_mapping(pairs: list[tuple[int, str]]) -> list[str]:
    by_index = dict(pairs)
    if len(by_index) != len(pairs) or sorted(by_index) != list(range(len(pairs))):
        raise _YamlError("names mapping keys must be 0..n-1, each once")
    return [by_index[index] for index in range(len(pairs))]


def _flow(text: str) -> list[str]:
    if text.startswith("["):
        return [_scalar(item) for item in _split_flow(text[1:-1])]
    pairs = []
    for item in _split_flow(text[1:-1]):
        key, sep, value = item.partition(":")
        if not sep:
            raise _YamlError(f"expected 'index: name', got {item!r}")
        pairs.append((_index(key), _scalar(value)))
    return _names_from_mapping(pairs)


def read_data_yaml(text: str) -> list[str]:
    """The class names from ``data.yaml`` text (``names`` required; ``nc`` checked)."""
    lines = [_strip_comment(raw.rstrip("\r")) for raw in text.split("\n")]
    names: list[str] | None = None
    names_line = 0
    nc: int | None = None
    nc_line = 0
    number = 0
    while number < len(lines):
        content = lines[number]
        number += 1
        if not content.strip() or content[0] in " \t" or content.lstrip().startswith("-"):
            continue  # blank, or the body of a key this reader skips
        key, sep, rest = content.partition(":")
        key, rest = key.strip().strip("\"'"), rest.strip()
        if not sep:
            raise DatasetError("expected 'key: value'", number, source=DATA_YAML)
        error_line = number
        try:
            if key == "names":
                names_line = number
                if rest.startswith(("[", "{")):
                    closing = "]" if rest.startswith("[") else "}"
                    while not rest.endswith(closing) and number < len(lines):
                        rest += " " + lines[number].strip()
                        number += 1
                    if not rest.endswith(closing):
                        raise _YamlError(f"unterminated flow collection (missing {closing!r})")
                    names = _flow(rest)
                elif rest:
                    raise _YamlError("names must be a list or an index mapping")
                else:
                    items: list[str] = []
                    pairs: list[tuple[int, str]] = []
                    while number < len(lines):
                        body = lines[number]
                        stripped = body.strip()
                        if stripped and body[0] not in " \t" and not stripped.startswith("-"):
                            break
                        number += 1
                        if not stripped:
                            continue
                        error_line = number
                        if stripped.startswith("-"):
                            items.append(_scalar(stripped[1:]))
                        else:
                            index, colon, value = stripped.partition(":")
                            if not colon:
                                raise _YamlError(
                                    f"expected '- name' or 'index: name', got {stripped!r}"
                                )
                            pairs.append((_index(index), _scalar(value)))
                    error_line = names_line
                    if items and pairs:
                        raise _YamlError("names mixes a list and a mapping")
                    names = items or _names_from_mapping(pairs)
            elif key == "nc":
                nc_line = number
                if not rest.isdigit():
                    raise _YamlError(f"nc must be a non-negative integer, got {rest!r}")
                nc = int(rest)
        except _YamlError as exc:
            raise DatasetError(exc.message, error_line, key, source=DATA_YAML) from None
    if names is None:
        raise DatasetError("missing required field", field="names", source=DATA_YAML)
    if nc is not None and nc != len(names):
        raise DatasetError(
            f"nc is {nc} but names lists {len(names)} labels", nc_line, "nc", source=DATA_YAML
        )
    errors = ErrorCollector()
    check_labels(errors, names, field="names")
    if errors.errors:
        first = errors.errors[0]
        raise DatasetError(
            first.message, names_line, first.field, source=DATA_YAML, errors=errors.errors
        )
    return names


def write_data_yaml(labels: list[str], extra: Mapping[str, str] | None = None) -> str:
    """``data.yaml`` text: ``extra`` keys (``path``, ``train``, ``val``...), ``nc``, ``names``.

    Strings are written double-quoted with JSON escapes, which YAML reads back exactly.
    """
    lines = [
        f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in (extra or {}).items()
    ]
    lines.append(f"nc: {len(labels)}")
    lines.append("names:")
    lines += [f"  - {json.dumps(label, ensure_ascii=False)}" for label in labels]
    return "\n".join(lines) + "\n"


# -- label files -----------------------------------------------------------------------------


def yolo_label_name(source_ref: str) -> str:
    """The default label file name for an image: ``s3://b/f/000012.jpg`` -> ``000012.txt``."""
    return PurePosixPath(source_ref.rstrip("/").rsplit("/", 1)[-1]).stem + ".txt"


def read_yolo(
    labels: Mapping[str, tuple[str, int, int]],
    data_yaml: str,
    *,
    clip: bool = False,
    source_ref_scheme: str | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> Dataset:
    """Read YOLO labels: {image source_ref: (``.txt`` text, width, height)} and ``data.yaml``.

    Errors name the image (as ``source``), the 1-based line of its ``.txt`` and the
    field (``class``, ``x_center``, ``y_center``, ``width``, ``height``).
    """
    names = read_data_yaml(data_yaml)
    errors = ErrorCollector(max_errors)
    images: list[ImageAnnotations] = []
    for source_ref, value in labels.items():
        ref = check_source_ref(errors, source_ref, source_ref_scheme, line=None, field="source_ref")
        if ref is None:
            continue
        if not isinstance(value, tuple | list) or len(value) != 3:
            errors.add("expected (txt text, width, height)", source=ref)
            continue
        text, width, height = value
        before = len(errors)
        for name, size in (("image width", width), ("image height", height)):
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                errors.add(f"{name} must be a positive integer, got {size!r}", source=ref)
        if not isinstance(text, str):
            errors.add("the label text must be a string", source=ref)
        if len(errors) > before:
            continue
        image = _read_label_file(errors, ref, text, width, height, names, clip=clip)
        if image is not None:
            images.append(image)
    return finish_dataset(errors, names, images, had_any_image=bool(labels))


def _read_label_file(
    errors: ErrorCollector,
    ref: str,
    text: str,
    width: int,
    height: int,
    names: list[str],
    *,
    clip: bool,
) -> ImageAnnotations | None:
    before = len(errors)
    boxes = []
    count = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        count += 1
        if len(tokens) != 5:
            errors.add(
                f"expected 5 values 'class x_center y_center width height', got {len(tokens)}",
                line=number,
                source=ref,
            )
            continue
        if not tokens[0].isdigit() or int(tokens[0]) >= len(names):
            errors.add(
                f"class {tokens[0]!r} is not an index into data.yaml names (0-{len(names) - 1})",
                line=number,
                field="class",
                source=ref,
            )
            continue
        values: list[float] = []
        for name, token in zip(_FIELDS[1:], tokens[1:], strict=True):
            try:
                number_value = float(token)
            except ValueError:
                number_value = math.nan
            if not math.isfinite(number_value):
                errors.add(
                    f"must be a finite number, got {token!r}", line=number, field=name, source=ref
                )
                continue
            values.append(number_value)
        if len(values) != 4:
            continue
        x_center, y_center, box_width, box_height = values
        box = check_box(
            errors,
            label=names[int(tokens[0])],
            left=(x_center - box_width / 2) * width,
            top=(y_center - box_height / 2) * height,
            width=box_width * width,
            height=box_height * height,
            image_width=width,
            image_height=height,
            clip=clip,
            line=number,
            fields=BoxFields("", ("x_center", "y_center", "width", "height")),
            source=ref,
        )
        if box is not None:
            boxes.append(box)
    check_box_count(errors, count, line=None, field="boxes", source=ref)
    if len(errors) > before:
        return None
    return ImageAnnotations(ref, width, height, boxes)


def _normalised(value: float, precision: int) -> str:
    return f"{min(max(value, 0.0), 1.0):.{precision}f}"


def write_yolo(
    dataset: Dataset,
    *,
    name_for: Callable[[ImageAnnotations], str] | None = None,
    precision: int = 6,
    yaml_extra: Mapping[str, str] | None = None,
    clip: bool = False,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> tuple[dict[str, str], str]:
    """``({label file name: text}, data.yaml text)``; negatives get an empty file.

    Label files are named by ``name_for(image)`` (default :func:`yolo_label_name`, the
    image's stem + ``.txt``); two images with the same name are an error (frames of
    different videos are often both ``000000.jpg``: pass a ``name_for`` that keeps them
    apart). Class indexes are label indexes; ``precision`` decimals per number.
    """
    checked = validate_dataset(dataset, clip=clip, max_errors=max_errors)
    errors = ErrorCollector(max_errors)
    namer = name_for or (lambda image: yolo_label_name(image.source_ref))
    index_of = {label: index for index, label in enumerate(checked.labels)}
    files: dict[str, str] = {}
    owners: dict[str, int] = {}
    for index, image in enumerate(checked.images):
        name = namer(image)
        if name in owners:
            errors.add(
                f"label file {name!r} would also be written for images[{owners[name]}] "
                f"({checked.images[owners[name]].source_ref!r}); pass name_for to tell them apart",
                field=f"images[{index}].source_ref",
                source=image.source_ref,
            )
            continue
        owners[name] = index
        lines = []
        for box in image.boxes:
            numbers = (
                (box.left + box.width / 2) / image.width,
                (box.top + box.height / 2) / image.height,
                box.width / image.width,
                box.height / image.height,
            )
            lines.append(
                " ".join([str(index_of[box.label]), *(_normalised(v, precision) for v in numbers)])
            )
        files[name] = "".join(line + "\n" for line in lines)
    errors.raise_if_any()
    return files, write_data_yaml(checked.labels, yaml_extra)
