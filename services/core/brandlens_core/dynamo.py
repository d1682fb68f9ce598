"""Plain-Python <-> DynamoDB attribute values, for the few shapes we store.

Supported: str, bool, int, float, None, dict, list, and sets of str. Floats
are stored as DynamoDB numbers and read back as float; integers as int.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store non-finite number {value!r} in DynamoDB")
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, set | frozenset):
        if not value:
            raise ValueError("DynamoDB cannot store an empty set")
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        raise TypeError("only sets of strings are supported")
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attr(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(value)
    if kind == "N":
        text = str(value)
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)
    if kind == "S":
        return value
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {from_attr({"N": v}) for v in value}
    if kind == "B":
        return value
    raise TypeError(f"unsupported DynamoDB attribute type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attr(v) for k, v in item.items()}
