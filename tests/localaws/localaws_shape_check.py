"""Check a parsed boto3 response against botocore's output shape (keys, types, enums)."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (float, int),
    "float": (float, int),
    "timestamp": (datetime.datetime,),
    "blob": (bytes,),
}


def problems(shape: Shape, value: Any, path: str = "$") -> list[str]:
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{path}: expected structure, got {type(value).__name__}"]
        found = [f"{path}.{key}: not in model" for key in value if key not in shape.members]
        found += [f"{path}.{key}: required but missing" for key in shape.required_members if key not in value]
        for key, item in value.items():
            if key in shape.members:
                found += problems(shape.members[key], item, f"{path}.{key}")
        return found
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{path}: expected list, got {type(value).__name__}"]
        return [p for index, item in enumerate(value) for p in problems(shape.member, item, f"{path}[{index}]")]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{path}: expected map, got {type(value).__name__}"]
        return [p for key, item in value.items() for p in problems(shape.value, item, f"{path}.{key}")]
    expected = _SCALARS[shape.type_name]
    if not isinstance(value, expected) or (shape.type_name in ("integer", "long") and isinstance(value, bool)):
        return [f"{path}: expected {shape.type_name}, got {type(value).__name__} {value!r}"]
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return [f"{path}: {value!r} not in enum {enum}"]
    return []


def assert_matches_output(service: str, operation: str, response: dict[str, Any]) -> None:
    """Assert ``response`` (minus ResponseMetadata) fits the operation's output shape."""
    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    body = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    if model.output_shape is None:
        assert body == {}, body
        return
    found = problems(model.output_shape, body)
    assert not found, found
