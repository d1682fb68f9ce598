"""Request validation against Rekognition's own service model (botocore's copy).

AWS checks every request against the operation's input shape before the
operation runs and answers ``ValidationException`` with a message like
``1 validation error detected: Value 'x y' at 'projectName' failed to satisfy
constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+``.
This does the same from the same model, so shapes, lengths, ranges, patterns
and enums are exactly AWS's. Blobs arrive base64-encoded and are returned decoded.
Members the model does not know are ignored, as AWS does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from typing import Any

from botocore.loaders import create_loader
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape

from brandlens_model_server.errors import UnknownOperationException, ValidationException

SERVICE = "rekognition"
TARGET_PREFIX = "RekognitionService."


@functools.cache
def service_model() -> ServiceModel:
    loader = create_loader()
    return ServiceModel(loader.load_service_model(SERVICE, "service-2"), SERVICE)


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # e.g. \p{L}: Java classes Python's re lacks; not enforced
        return None


def input_shape(operation: str) -> StructureShape:
    try:
        op = service_model().operation_model(operation)
    except Exception:  # botocore's OperationNotFoundError
        raise UnknownOperationException(f"Operation {operation} is not supported.") from None
    shape = op.input_shape
    assert isinstance(shape, StructureShape)
    return shape


def parse_input(operation: str, body: bytes) -> dict[str, Any]:
    """The request's members, validated against the operation's input shape."""
    shape = input_shape(operation)
    if body.strip():
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValidationException("The request body is not valid JSON.") from None
    else:
        value = {}
    if not isinstance(value, dict):
        raise ValidationException("The request body must be a JSON object.")
    errors: list[str] = []
    parsed = _check(shape, value, "", errors)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(errors))
    assert isinstance(parsed, dict)
    return parsed


def _fail(errors: list[str], value: Any, path: str, constraint: str) -> None:
    shown = "null" if value is None else f"'{_show(value)}'"
    errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> Any:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            _fail(errors, value, path, "Member must be a structure")
            return value
        out: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                _fail(errors, None, _join(path, _lower_camel(name)), "Member must not be null")
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[name] = _check(member, value[name], _join(path, _lower_camel(name)), errors)
        return out
    if kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            _fail(errors, value, path, "Member must be a list")
            return value
        _length(meta, value, len(value), path, errors)
        return [
            _check(shape.member, item, f"{path}.{i + 1}.member", errors)
            for i, item in enumerate(value)
        ]
    if kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            _fail(errors, value, path, "Member must be a map")
            return value
        _length(meta, value, len(value), path, errors)
        return {
            _check(shape.key, k, f"{path}.{k}.key", errors): _check(
                shape.value, v, f"{path}.{k}.value", errors
            )
            for k, v in value.items()
        }
    if kind == "string":
        if not isinstance(value, str):
            _fail(errors, value, path, "Member must be a string")
            return value
        _length(meta, value, len(value), path, errors)
        pattern = meta.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            _fail(errors, value, path, f"Member must satisfy regular expression pattern: {pattern}")
        enum = shape.enum
        if enum and value not in enum:
            _fail(errors, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(errors, value, path, "Member must be an integer")
            return value
        _range(meta, value, path, errors)
        return value
    if kind in ("float", "double"):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            _fail(errors, value, path, "Member must be a number")
            return value
        _range(meta, value, path, errors)
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            _fail(errors, value, path, "Member must be a boolean")
        return value
    if kind == "blob":
        if not isinstance(value, str):
            _fail(errors, value, path, "Member must be base64-encoded bytes")
            return value
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            _fail(errors, "<bytes>", path, "Member must be base64-encoded bytes")
            return b""
        _length(meta, "<bytes>", len(data), path, errors)
        return data
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            _fail(errors, value, path, "Member must be a timestamp")
        return value
    return value


def _length(meta: dict[str, Any], value: Any, length: int, path: str, errors: list[str]) -> None:
    if "min" in meta and length < meta["min"]:
        _fail(
            errors, value, path, f"Member must have length greater than or equal to {meta['min']}"
        )
    if "max" in meta and length > meta["max"]:
        _fail(errors, value, path, f"Member must have length less than or equal to {meta['max']}")


def _range(meta: dict[str, Any], value: float, path: str, errors: list[str]) -> None:
    if "min" in meta and value < meta["min"]:
        _fail(errors, value, path, f"Member must have value greater than or equal to {meta['min']}")
    if "max" in meta and value > meta["max"]:
        _fail(errors, value, path, f"Member must have value less than or equal to {meta['max']}")
