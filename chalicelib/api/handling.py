"""One API request, from raw event to response: check path parameters, parse the body and query into their models,
call the view, render its result as the route's response model. Every failure goes to `errors.error_response`.

Nothing here trusts the request: bodies must be UTF-8 JSON objects of at most MAX_BODY_BYTES, without lone
surrogates (they could not be stored), nested no deeper than the parser allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Request, Response
from pydantic import BaseModel

from chalicelib.api import models
from chalicelib.api.errors import JSON_HEADERS, PayloadTooLarge, UnsupportedMediaType, error_response
from chalicelib.api.identity import caller_of
from chalicelib.api.route import ApiRequest, ApiRoute
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.spec import TARGET_NAME

MAX_BODY_BYTES = 1024 * 1024
_PATH_RULES = {"name": re.compile(TARGET_NAME), "deployment_id": re.compile(models.DEPLOYMENT_ID),
               "command_id": re.compile(models.COMMAND_ID)}


def handle(route: ApiRoute, view: Callable[..., Any], request: Request | None,
           path_parameters: Mapping[str, str]) -> Response:
    try:
        _check_path(path_parameters)
        api_request = ApiRequest(
            caller=caller_of(request.context if request else None),
            body=_body(route, request) if route.body else None,
            query=_query(route, request) if route.query else None)
        result = view(**path_parameters, request=api_request)
    except Exception as exc:
        return error_response(exc)
    try:
        return _render(route, result)
    except Exception as exc:  # a response that does not fit its model is berth's bug, never the caller's
        return error_response(RuntimeError(f"rendering {route.name}: {type(exc).__name__}"))


def _check_path(path_parameters: Mapping[str, str]) -> None:
    for name, value in path_parameters.items():
        if not isinstance(value, str) or not _PATH_RULES[name].fullmatch(value):
            raise InvalidRequest(f"{name}: {value!r:.80} is not a valid {name.replace('_', ' ')} "
                                 f"(pattern {_PATH_RULES[name].pattern})", field=name)


def _body(route: ApiRoute, request: Request | None) -> BaseModel:
    model = getattr(models, str(route.body))
    raw = request.raw_body if request is not None else b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if route.body_required:
            raise InvalidRequest("the request needs a JSON object body", field="body")
        return model.model_validate({})  # type: ignore[no-any-return]
    content_type = (request.headers.get("content-type") if request is not None else None) or "application/json"
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {content_type[:80]!r}")
    try:
        data = json.loads(raw.decode("utf-8"))
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be stored: refuse them now
    except UnicodeError:
        raise InvalidRequest("the body is not UTF-8 text", field="body") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                             field="body") from None
    except RecursionError:
        raise InvalidRequest("the body is nested too deeply", field="body") from None
    except ValueError:  # Python reads integers of at most 4300 digits
        raise InvalidRequest("the body holds a number of more than 4300 digits", field="body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    return model.model_validate(data)  # type: ignore[no-any-return]


def _query(route: ApiRoute, request: Request | None) -> BaseModel:
    model = getattr(models, str(route.query))
    params = request.query_params if request is not None else None
    values = {name: params.getlist(name)[-1] for name in params} if params else {}
    return model.model_validate(values)  # type: ignore[no-any-return]


def _render(route: ApiRoute, result: Any) -> Response:
    model = getattr(models, route.response)
    view = result if isinstance(result, model) else model.of(result)
    headers: dict[str, str | list[str]] = {**JSON_HEADERS}
    if route.location:
        headers["Location"] = route.location.format(**view.model_dump())
    return Response(body=view.model_dump_json(), status_code=route.status, headers=headers)
