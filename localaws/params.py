"""Reading a request's parameters inside an added response method."""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import BaseResponse

from .validate import check_request


def request_params(response: BaseResponse, service: str, operation: str) -> dict[str, Any]:
    """The JSON body of a request (all extended services speak JSON 1.1), checked against the model.

    The body is read directly rather than through ``_get_param`` because the patched classes differ:
    moto parses CodeDeploy and SSM requests through the model but leaves CodePipeline's raw.
    """
    raw = response.body
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    params: dict[str, Any] = json.loads(raw) if raw else {}
    check_request(service, operation, params)
    return params
