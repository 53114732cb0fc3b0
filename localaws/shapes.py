"""Results checked against the operation's output shape before moto serializes them.

moto's serializer silently drops members the model does not know, so a misspelt key would vanish
instead of failing. :func:`shaped` refuses such a result loudly (a bug in localaws, not a client error).
"""

from __future__ import annotations

from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from moto.core.responses import ActionResult
from moto.core.utils import get_service_model


def unknown_members(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Paths in ``value`` that ``shape`` has no member for."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        found = [f"{path}.{key}" for key in value if key not in shape.members]
        for key, item in value.items():
            if key in shape.members:
                found += unknown_members(shape.members[key], item, f"{path}.{key}")
        return found
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [
            bad for index, item in enumerate(value) for bad in unknown_members(shape.member, item, f"{path}[{index}]")
        ]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return [bad for key, item in value.items() for bad in unknown_members(shape.value, item, f"{path}.{key}")]
    return []


def shaped(service: str, operation: str, body: dict[str, Any]) -> ActionResult:
    output = get_service_model(service).operation_model(operation).output_shape
    if output is not None:
        unknown = unknown_members(output, body)
        if unknown:
            raise AssertionError(f"localaws built {operation} output with members the model lacks: {unknown}")
    return ActionResult(body)
