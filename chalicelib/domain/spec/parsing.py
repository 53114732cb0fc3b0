"""UserParameters and request bodies into specs, with one InvalidRevision that names every bad field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidRevision
from .target import PipelineParameters, TargetReference, TargetSpec


def parse_pipeline_parameters(raw: str | None, context: dict[str, Any] | None = None) -> PipelineParameters:
    """UserParameters JSON → a full spec (to store under its name) or a reference to a stored one."""
    if raw is None or not raw.strip():
        raise InvalidRevision(
            'UserParameters are missing: set them on the pipeline action, e.g. {"target": "web-prod"} '
            "or a whole target spec (see the README's configuration table)"
        )
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRevision(
            f"UserParameters are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidRevision("UserParameters are not valid JSON: nested too deeply") from None
    except ValueError:  # Python reads integers of at most 4300 digits
        raise InvalidRevision("UserParameters are not valid JSON: a number of more than 4300 digits") from None
    if not isinstance(data, dict):
        raise InvalidRevision("UserParameters must be a JSON object such as {\"target\": \"web-prod\"}")
    reference_only = set(data) <= {"target", "image"}
    model: type[TargetSpec] | type[TargetReference] = TargetReference if reference_only else TargetSpec
    parsed: PipelineParameters = parse_model(model, data, "UserParameters", context)
    return parsed


def parse_model(model: type[Any], data: Any, what: str, context: dict[str, Any] | None = None) -> Any:
    """Validate `data` as `model`, turning pydantic's errors into one InvalidRevision that names every bad field.

    Input values are left out of the message: an env value may be a credential.
    """
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise InvalidRevision(f"{what} are not valid: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; unknown keys are not ignored)"
        problems.append(f"{location}: {message}")
    return "; ".join(problems)
