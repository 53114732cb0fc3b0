"""Server-side checks of the constraints botocore leaves to the service.

botocore's client validates types, required members and minimums, but not ``max``, ``pattern`` or
``enum``; AWS enforces them and answers ``ValidationException``. The extensions run every request
through :func:`check_request` so a value AWS would refuse (a 6000-character failure message, a job id
that is not a UUID, ``MaxResults=100``) is refused here too.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from moto.core.utils import get_service_model

from .errors import validation_error


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a Java-only construct: AWS checks it, we cannot
        return None


def _describe(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _scalar_errors(shape: Shape, value: Any, path: str) -> list[str]:
    meta = shape.metadata
    found: list[str] = []
    prefix = f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: Member must"
    if shape.type_name == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{prefix} have length less than or equal to {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            found.append(f"{prefix} have length greater than or equal to {meta['min']}")
        pattern = _compiled(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.fullmatch(value):
            found.append(f"{prefix} satisfy regular expression pattern: {meta['pattern']}")
        enum: list[str] = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            found.append(f"{prefix} satisfy enum value set: [{', '.join(enum)}]")
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            found.append(f"{prefix} have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            found.append(f"{prefix} have value greater than or equal to {meta['min']}")
    return found


def _errors(shape: Shape, value: Any, path: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        found: list[str] = []
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                found += _errors(member, value[name], f"{path}.{name}" if path else name)
        return found
    if isinstance(shape, ListShape) and isinstance(value, list):
        found = []
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            found.append(
                f"Value '{_describe(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {meta['max']}"
            )
        for index, item in enumerate(value):
            found += _errors(shape.member, item, f"{path}.{index + 1}.member")
        return found
    if isinstance(shape, MapShape) and isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += _scalar_errors(shape.key, key, f"{path}.key")
            found += _errors(shape.value, item, f"{path}.{key}")
        return found
    return _scalar_errors(shape, value, path)


def check_request(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise ``ValidationException`` if ``params`` break a constraint of the operation's input shape."""
    input_shape = get_service_model(service).operation_model(operation).input_shape
    if input_shape is None:
        return
    found = _errors(input_shape, params, "")
    if found:
        raise validation_error(found)
