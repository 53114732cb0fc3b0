"""The API's contract: AWS_IAM on every route (in the app and in what `chalice package` deploys), the OpenAPI
document generated from the route table with the models' real schemas, and where the caller's identity comes from."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chalice.app import IAMAuthorizer

from app import api, app
from chalicelib.api.errors import error_response
from chalicelib.api.identity import caller_of
from chalicelib.api.openapi import document
from chalicelib.domain.errors import BerthError, TargetBusy
from tests.api.support import call
from tests.conftest import World

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
PROJECT = Path(__file__).resolve().parents[2]


def chalice_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, methods in app.routes.items() for method in methods}


def test_every_chalice_route_is_iam_authorized_and_in_the_route_table() -> None:
    assert chalice_routes(), "the app has no routes"
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            assert isinstance(entry.authorizer, IAMAuthorizer), f"{method} {path} is not AWS_IAM"
    assert {(route.path, route.method) for route in api.table} == chalice_routes()
    assert len(api.table) == len(chalice_routes()), "a route is in the table twice"


def test_packaged_api_requires_sigv4_on_every_operation(tmp_path: Path) -> None:
    """Package a copy of the app without its requirements: auth lives in the app, and packaging needs no index."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(PROJECT / "app.py", copy)
    shutil.copytree(PROJECT / "chalicelib", copy / "chalicelib", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT / ".chalice", copy / ".chalice", ignore=shutil.ignore_patterns("deployments", "venv"))
    (copy / "requirements.txt").write_text("")
    chalice = Path(sys.executable).with_name("chalice")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([str(chalice), "package", "--stage", "test", str(tmp_path / "out")], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"chalice package failed, so the packaged check could not run: {result.stderr[-500:]}")
    template = json.loads((tmp_path / "out" / "sam.json").read_text())
    apis = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    assert len(apis) == 1
    swagger = apis[0]["Properties"]["DefinitionBody"]
    scheme = swagger["securityDefinitions"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4" and scheme["name"] == "Authorization"
    packaged = set()
    for path, methods in swagger["paths"].items():
        for method, operation in methods.items():
            if method == "x-amazon-apigateway-any-method" or not isinstance(operation, dict):
                continue
            assert operation.get("security") == [{"sigv4": []}], f"{method} {path}: {operation.get('security')}"
            packaged.add((path, method.upper()))
    assert packaged == chalice_routes()


def test_openapi_document_covers_every_route_with_real_schemas(aws: World) -> None:
    reply = call("GET", "/openapi.json")
    assert reply.status == 200
    doc = reply.body
    assert doc == json.loads(json.dumps(document(api.table)))
    assert doc["openapi"].startswith("3.1")
    operations = {(path, method.upper()): op
                  for path, methods in doc["paths"].items() for method, op in methods.items()}
    assert set(operations) == chalice_routes()
    schemas = doc["components"]["schemas"]
    for (path, method), operation in operations.items():
        assert operation["security"] == [{"sigv4": []}]
        for status, response in operation["responses"].items():
            ref = response["content"]["application/json"]["schema"]["$ref"]
            schema = schemas[ref.rsplit("/", 1)[1]]
            assert schema.get("properties"), f"{method} {path} {status}: empty schema {ref}"
            if status.startswith(("4", "5")):
                assert ref.endswith("/ErrorBody")
    put = operations[("/targets/{name}", "PUT")]
    body = schemas[put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"instances", "container", "rollout"} <= set(body["properties"]) and "target" not in body["required"]
    assert body["additionalProperties"] is False
    redeploy = operations[("/targets/{name}/deployments", "POST")]
    assert set(redeploy["responses"]) == {"202", "400", "404", "409", "413", "415", "502"}
    assert "Location" in redeploy["responses"]["202"]["headers"]
    logs = operations[("/targets/{name}/logs", "GET")]
    query = {p["name"]: p for p in logs["parameters"] if p["in"] == "query"}
    assert set(query) == {"instance", "since", "tail"} and query["tail"]["schema"]["maximum"] == 10000
    assert set(logs["responses"]) == {"202", "400", "404", "409", "502"}
    assert "Location" in logs["responses"]["202"]["headers"]
    read_logs = operations[("/targets/{name}/logs/{command_id}", "GET")]
    assert [p["name"] for p in read_logs["parameters"]] == ["name", "command_id"]
    run = operations[("/targets/{name}/exec", "POST")]
    assert set(run["responses"]) == {"202", "400", "404", "409", "413", "415", "502"}
    exec_body = schemas[run["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert exec_body["required"] == ["command"] and exec_body["properties"]["timeout_seconds"]["minimum"] == 60
    audit = operations[("/deployments", "GET")]
    audit_query = {p["name"]: p for p in audit["parameters"] if p["in"] == "query"}
    assert set(audit_query) == {"caller", "digest", "since", "until", "target", "status", "limit", "next"}
    assert not any(p["required"] for p in audit_query.values())
    assert set(audit["responses"]) == {"200", "400"}
    freeze = operations[("/targets/{name}/freeze", "POST")]
    assert set(freeze["responses"]) >= {"200", "400", "404"}
    freeze_body = schemas[freeze["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert freeze_body["required"] == ["reason"] and set(freeze_body["properties"]) == {"reason", "until"}
    assert ("/targets/{name}/unfreeze", "POST") in operations
    assert "override_freeze" in schemas["RedeployRequest"]["properties"]
    assert "freeze" in schemas["TargetView"]["properties"]
    history = operations[("/targets/{name}/deployments", "GET")]
    limit = next(p for p in history["parameters"] if p["name"] == "limit")
    assert limit["in"] == "query" and limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 100


def test_openapi_patterns_are_ecma_regexes() -> None:
    """The models may anchor with Python's `\\Z`; JSON Schema (ECMA) has no such escape, so the document says `$`."""
    patterns: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            patterns.extend(v for k, v in node.items() if k == "pattern" and isinstance(v, str))
            patterns.extend(node.get("patternProperties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document(api.table))
    assert len(patterns) > 10
    for pattern in patterns:
        assert "\\Z" not in pattern and "\\A" not in pattern, pattern
        re.compile(pattern)


def test_openapi_document_is_valid_for_schemathesis() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(document(api.table))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(chalice_routes())


@pytest.mark.parametrize("context, expected", [
    ({"identity": {"userArn": "arn:aws:iam::1:user/a", "caller": "AIDA:a"}}, "arn:aws:iam::1:user/a"),
    ({"identity": {"userArn": None, "caller": "AIDA:a"}}, "AIDA:a"),
    ({"identity": {"userArn": "  ", "caller": ""}}, "unknown"),
    ({"identity": {"sourceIp": "127.0.0.1"}}, "unknown"),
    ({"identity": "weird"}, "unknown"),
    ({}, "unknown"),
    (None, "unknown"),
    ({"identity": {"userArn": "a" * 2000}}, "a" * 512),
])
def test_caller_comes_from_the_iam_identity(context: dict[str, Any] | None, expected: str) -> None:
    assert caller_of(context) == expected


def test_errors_map_to_json_in_one_place() -> None:
    busy = error_response(TargetBusy("web", "d-1"))
    assert busy.status_code == 409
    assert json.loads(busy.body) == {"error": {"code": "TargetBusy", "field": None,
                                               "message": "target 'web' is busy: deployment d-1 is running"}}
    assert error_response(BerthError("x")).status_code == 500
    hidden = error_response(RuntimeError("secret detail"))
    assert hidden.status_code == 500 and "secret" not in hidden.body
