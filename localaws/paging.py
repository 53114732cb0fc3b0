"""Opaque NextToken values for the list operations the extensions add.

A token is the offset of the next item, base64-encoded with the operation name so a token from one
operation is refused by another, as AWS refuses foreign tokens.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from .errors import AwsError

T = TypeVar("T")


def _encode(operation: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{operation}:{offset}".encode()).decode()


def _decode(operation: str, token: str, error_code: str) -> int:
    try:
        name, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if name != operation:
            raise ValueError(name)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AwsError(error_code, "The specified token is not valid.") from None


def page(
    items: Sequence[T],
    operation: str,
    max_results: int,
    next_token: str | None,
    error_code: str = "InvalidNextToken",
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token for the next page (``None`` on the last one)."""
    start = _decode(operation, next_token, error_code) if next_token else 0
    end = start + max_results
    chunk = list(items[start:end])
    return chunk, (_encode(operation, end) if end < len(items) else None)
