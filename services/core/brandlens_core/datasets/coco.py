"""COCO object detection JSON.

``bbox`` is ``[x, y, width, height]`` in absolute pixels; category ids are arbitrary
integers. Labels follow the order of ``categories``. An image's optional ``group``
key (written by :func:`write_coco`, ignored by COCO tools) carries its group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from brandlens_core.datasets.base import (
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


def _root(root: str) -> str:
    return root if root.endswith("/") else root + "/"


def _ref(root: str | None, file_name: str) -> str:
    return _root(root) + file_name if root else file_name


def _id(value: object) -> int | str | None:
    """COCO ids are integers; strings are tolerated. Booleans and the rest are not ids."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return value
    return None


def _list(errors: ErrorCollector, data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        errors.add("missing required field", field=key)
        return []
    if not isinstance(value, list):
        errors.add(f"must be a list, got {describe_type(value)}", field=key)
        return []
    return value


def read_coco(
    data: str | bytes | Mapping[str, Any],
    *,
    image_root: str | None = None,
    clip: bool = False,
    source_ref_scheme: str | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> Dataset:
    """Read COCO detection JSON (text or already parsed).

    ``source_ref`` = ``image_root`` + ``/`` + ``file_name`` (just ``file_name`` without a
    root). Every category becomes a label, in the order listed. Images need ``id``,
    ``file_name``, ``width`` and ``height``; annotations ``image_id``, ``category_id`` and
    ``bbox``. Crowd annotations are read like any other box. Errors name
    ``images[i]``/``annotations[i]``/``categories[i]`` and the field.
    """
    errors = ErrorCollector(max_errors)
    if not isinstance(data, Mapping):
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno
            ) from None
        except UnicodeDecodeError as exc:
            raise DatasetError(f"not UTF-8 text: {exc.reason}") from None
        if not isinstance(parsed, dict):
            raise DatasetError(f"expected a JSON object, got {describe_type(parsed)}")
        data = parsed
    raw_images = _list(errors, data, "images")
    raw_annotations = _list(errors, data, "annotations")
    raw_categories = _list(errors, data, "categories")

    labels: list[str] = []
    categories: dict[int | str, str] = {}
    for index, category in enumerate(raw_categories):
        where = f"categories[{index}]"
        if not isinstance(category, dict):
            errors.add(f"must be an object, got {describe_type(category)}", field=where)
            continue
        category_id = _id(category.get("id"))
        name = category.get("name")
        if category_id is None:
            errors.add("must be an integer id", field=f"{where}.id")
        elif category_id in categories:
            errors.add(f"duplicate category id {category_id!r}", field=f"{where}.id")
            category_id = None
        if not isinstance(name, str) or not name.strip():
            errors.add("must be a non-empty label name", field=f"{where}.name")
        elif name in labels:
            errors.add(f"duplicate category name {name!r}", field=f"{where}.name")
        elif category_id is not None:
            categories[category_id] = name
            labels.append(name)

    images: dict[int | str, tuple[int, ImageAnnotations]] = {}
    refs: dict[str, int] = {}
    for index, image in enumerate(raw_images):
        where = f"images[{index}]"
        if not isinstance(image, dict):
            errors.add(f"must be an object, got {describe_type(image)}", field=where)
            continue
        before = len(errors)
        image_id = _id(image.get("id"))
        if image_id is None:
            errors.add("must be an integer id", field=f"{where}.id")
        elif image_id in images:
            errors.add(f"duplicate image id {image_id!r}", field=f"{where}.id")
        file_name = image.get("file_name")
        ref = None
        if not isinstance(file_name, str) or not file_name:
            errors.add("must be a non-empty file name", field=f"{where}.file_name")
        else:
            ref = check_source_ref(
                errors,
                _ref(image_root, file_name),
                source_ref_scheme,
                line=None,
                field=f"{where}.file_name",
            )
        width = as_positive_int(
            errors, image.get("width"), line=None, field=f"{where}.width", source=ref
        )
        height = as_positive_int(
            errors, image.get("height"), line=None, field=f"{where}.height", source=ref
        )
        group = image.get("group")
        if group is not None and (not isinstance(group, str) or not group):
            errors.add("must be a non-empty string", field=f"{where}.group", source=ref)
            group = None
        if ref is not None and ref in refs:
            errors.add(
                f"duplicate image {ref!r} (also images[{refs[ref]}])", field=f"{where}.file_name"
            )
        if (
            len(errors) > before
            or image_id is None
            or ref is None
            or width is None
            or height is None
        ):
            continue
        refs[ref] = index
        images[image_id] = (index, ImageAnnotations(ref, width, height, [], group))

    counts: dict[int | str, int] = {}
    for index, annotation in enumerate(raw_annotations):
        where = f"annotations[{index}]"
        if not isinstance(annotation, dict):
            errors.add(f"must be an object, got {describe_type(annotation)}", field=where)
            continue
        image_id = _id(annotation.get("image_id"))
        category_id = _id(annotation.get("category_id"))
        owner = images.get(image_id) if image_id is not None else None
        label = categories.get(category_id) if category_id is not None else None
        images_known = isinstance(data.get("images"), list)
        categories_known = isinstance(data.get("categories"), list)
        if images_known and (
            image_id is None or (owner is None and not _id_was_rejected(raw_images, image_id))
        ):
            errors.add(
                f"image_id {annotation.get('image_id')!r} is not the id of an image",
                field=f"{where}.image_id",
            )
        if categories_known and (
            category_id is None
            or (label is None and not _id_was_rejected(raw_categories, category_id))
        ):
            errors.add(
                f"category_id {annotation.get('category_id')!r} is not the id of a category",
                field=f"{where}.category_id",
            )
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            errors.add("must be a list [x, y, width, height]", field=f"{where}.bbox")
            continue
        source = owner[1].source_ref if owner else None
        numbers = [
            as_number(errors, value, line=None, field=f"{where}.bbox[{i}]", source=source)
            for i, value in enumerate(bbox)
        ]
        valid = [number for number in numbers if number is not None]
        if owner is None or label is None or image_id is None or len(valid) != 4:
            continue
        counts[image_id] = counts.get(image_id, 0) + 1
        left, top, box_width, box_height = valid
        box = check_box(
            errors,
            label=label,
            left=left,
            top=top,
            width=box_width,
            height=box_height,
            image_width=owner[1].width,
            image_height=owner[1].height,
            clip=clip,
            line=None,
            fields=BoxFields(where, ("bbox[0]", "bbox[1]", "bbox[2]", "bbox[3]")),
            source=source,
        )
        if box is not None:
            owner[1].boxes.append(box)
    for image_id, count in counts.items():
        index, image = images[image_id]
        check_box_count(errors, count, line=None, field=f"images[{index}]", source=image.source_ref)
    ordered = [image for _index, image in sorted(images.values(), key=lambda item: item[0])]
    return finish_dataset(errors, labels, ordered, had_any_image=bool(raw_images))


def _id_was_rejected(items: list[Any], wanted: int | str) -> bool:
    """Whether an entry with this id exists but was already reported as invalid."""
    return any(isinstance(item, dict) and _id(item.get("id")) == wanted for item in items)


def write_coco(
    dataset: Dataset,
    *,
    image_root: str | None = None,
    clip: bool = False,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> dict[str, Any]:
    """The dataset as COCO detection JSON (a dict; ``json.dumps`` it).

    Category ids are 1..n in label order; image and annotation ids count from 1.
    ``file_name`` is the ``source_ref`` with ``image_root`` (and a ``/``) removed; every
    image must then lie under the root. Images with a group carry a ``group`` key.
    """
    checked = validate_dataset(dataset, clip=clip, max_errors=max_errors)
    errors = ErrorCollector(max_errors)
    root = _root(image_root) if image_root else None
    category_ids = {label: index for index, label in enumerate(checked.labels, start=1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, image in enumerate(checked.images):
        file_name = image.source_ref
        if root is not None:
            if not file_name.startswith(root) or len(file_name) == len(root):
                errors.add(
                    f"image is not under image_root {root!r}",
                    field=f"images[{index}].source_ref",
                    source=image.source_ref,
                )
                continue
            file_name = file_name[len(root) :]
        entry: dict[str, Any] = {
            "id": index + 1,
            "file_name": file_name,
            "width": image.width,
            "height": image.height,
        }
        if image.group is not None:
            entry["group"] = image.group
        images.append(entry)
        for box in image.boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": category_ids[box.label],
                    "bbox": [json_number(v) for v in (box.left, box.top, box.width, box.height)],
                    "area": json_number(box.width * box.height),
                    "iscrowd": 0,
                }
            )
    errors.raise_if_any()
    categories = [{"id": category_ids[label], "name": label} for label in checked.labels]
    return {"images": images, "annotations": annotations, "categories": categories}
