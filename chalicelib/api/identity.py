"""Who is calling: the IAM identity API Gateway puts in the request context of an `AWS_IAM`-authorized route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNKNOWN = "unknown"
MAX_CALLER = 512


def caller_of(request_context: Mapping[str, Any] | None) -> str:
    """`identity.userArn`, else `identity.caller`, else "unknown" (chalice local and tests have no identity)."""
    identity = (request_context or {}).get("identity") or {}
    if not isinstance(identity, Mapping):
        return UNKNOWN
    for key in ("userArn", "caller"):
        value = identity.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_CALLER]
    return UNKNOWN
