"""The OpenAPI 3.1 document, generated from the route table and the pydantic models' own JSON schemas.

Request bodies use each model's validation schema, responses its serialization schema; pydantic names the two
`X-Input` / `X-Output` where they differ. Every operation carries the `sigv4` security requirement (API Gateway's
`AWS_IAM`), as `chalice package` writes it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic.json_schema import models_json_schema

from chalicelib.api import models
from chalicelib.api.route import ApiRoute
from chalicelib.domain.spec import TARGET_NAME

REF = "#/components/schemas/{model}"
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": TARGET_NAME, "description": "the target's name"},
    "deployment_id": {"type": "string", "pattern": models.DEPLOYMENT_ID, "description": "a deployment id"},
    "command_id": {"type": "string", "pattern": models.COMMAND_ID, "description": "an SSM command id"},
}
ERROR_DESCRIPTIONS = {
    400: "bad JSON, a bad field or a bad path parameter; `field` names it",
    404: "no such target, deployment or command",
    409: "the target is busy, its circuit breaker is open, there is nothing to do, or no instance can run it",
    413: "the body is too large",
    415: "the body is not JSON",
    502: "an AWS call failed",
}
SIGV4 = {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}
Mode = Literal["validation", "serialization"]
_ECMA_ANCHORS = re.compile(r"\\[AZ]")


def document(routes: list[ApiRoute], title: str = "berth", version: str = "1") -> dict[str, Any]:
    wanted: set[tuple[str, Mode]] = {("ErrorBody", "serialization")}
    for route in routes:
        wanted.add((route.response, "serialization"))
        if route.body:
            wanted.add((route.body, "validation"))
    keys = sorted(wanted)
    refs, definitions = models_json_schema([(getattr(models, name), mode) for name, mode in keys],
                                           ref_template=REF)
    ref = {key: refs[(getattr(models, key[0]), key[1])] for key in keys}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, ref)
    doc: dict[str, Any] = _ecma_patterns({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "berth's REST API. Every call is signed with SigV4 (API Gateway AWS_IAM)."},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}), "securitySchemes": {"sigv4": SIGV4}},
        "security": [{"sigv4": []}],
    })
    return doc


def _ecma_patterns(node: Any) -> Any:
    r"""JSON Schema patterns are ECMA regexes: the models' Python-only `\A` / `\Z` anchors become `^` / `$` (the same
    meaning there, since ECMA's `$` accepts no trailing newline)."""
    if isinstance(node, dict):
        return {key: (_ecma(value) if key == "pattern" and isinstance(value, str)
                      else {_ecma(k): _ecma_patterns(v) for k, v in value.items()}
                      if key == "patternProperties" and isinstance(value, dict) else _ecma_patterns(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_ecma_patterns(item) for item in node]
    return node


def _ecma(pattern: str) -> str:
    return _ECMA_ANCHORS.sub(lambda match: "^" if match.group() == r"\A" else "$", pattern)


def _operation(route: ApiRoute, ref: dict[tuple[str, Mode], dict[str, Any]]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_SCHEMAS[name]} for name in route.path_parameters]
    if route.query:
        schema = getattr(models, route.query).model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
                               **({"description": prop["description"]} if "description" in prop else {})})
    success: dict[str, Any] = {"description": route.summary,
                               "content": {"application/json": {"schema": ref[(route.response, "serialization")]}}}
    if route.location:
        success["headers"] = {"Location": {"description": "the new resource", "schema": {"type": "string"}}}
    error = {"content": {"application/json": {"schema": ref[("ErrorBody", "serialization")]}}}
    codes = {400, *route.errors} | ({413, 415} if route.body else set())
    responses = {str(route.status): success,
                 **{str(code): {"description": ERROR_DESCRIPTIONS[code], **error} for code in sorted(codes)}}
    operation: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "responses": responses,
                                 "security": [{"sigv4": []}]}
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        operation["requestBody"] = {"required": route.body_required, "content": {
            "application/json": {"schema": ref[(route.body, "validation")]}}}
    return operation
