"""An HTTP GET with a hard timeout, for lifecycle hook checks. Standard library only: no extra cold-start cost."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    status: int | None
    body: str
    error: str = ""


def probe(url: str, timeout_seconds: float) -> ProbeResult:
    request = urllib.request.Request(url, headers={"User-Agent": "berth-lifecycle-hook"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310 - http(s) only
            return ProbeResult(response.status, response.read(MAX_BODY).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return ProbeResult(exc.code, exc.read(MAX_BODY).decode("utf-8", "replace"))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return ProbeResult(None, "", f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
