"""The one place where errors become HTTP responses: `{"error": {"code", "message", "field"}}`.

A berth error carries its own `http_status`; a pydantic ValidationError is a 400 naming the first bad field (and the
message names every one, without their values: an env value may be a credential); anything else is a logged 500
whose message gives nothing away.
"""

from __future__ import annotations

import json
import logging

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.domain.errors import BerthError
from chalicelib.domain.spec import describe_validation_error

logger = logging.getLogger(__name__)
JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json"}


class UnsupportedMediaType(BerthError):
    http_status = 415


class PayloadTooLarge(BerthError):
    http_status = 413


def error_response(exc: Exception, what: str = "request") -> Response:
    if isinstance(exc, ValidationError):
        return _response(400, "InvalidRequest", f"{what} is not valid: {describe_validation_error(exc)}",
                         _first_field(exc))
    if isinstance(exc, BerthError):
        return _response(exc.http_status, type(exc).__name__, exc.message, getattr(exc, "field", None))
    logger.exception("unexpected error while answering an API request")
    return _response(500, "InternalError", "berth hit an internal error; its logs have the details", None)


def _response(status: int, code: str, message: str, field: str | None) -> Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return Response(body=json.dumps(body), status_code=status, headers={**JSON_HEADERS})


def _first_field(exc: ValidationError) -> str | None:
    errors = exc.errors(include_input=False, include_url=False)
    location = [str(part) for part in errors[0]["loc"] if part != "[key]"] if errors else []
    return ".".join(location) or None
