"""container.secrets and container.registry_credentials: ARNs only, validated at the edge, carried to the script."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.command import DeployCommand, start_container_args
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.spec.command_args import command_bytes, env_command_bytes, run_option_args, secret_args
from chalicelib.domain.spec.container import MAX_ENV_COMMAND_BYTES
from chalicelib.domain.spec.secrets import MAX_SECRETS
from tests.unit.spec_helpers import error_of, parse

SM = "arn:aws:secretsmanager:eu-west-1:123456789012:secret"
DB = f"{SM}:prod/db-AbCdEf"
API_KEY = "arn:aws:ssm:eu-west-1:123456789012:parameter/web/api-key"
REGISTRY = f"{SM}:registry/login-Zx9Yw8"


@pytest.mark.parametrize("arn", [
    DB, f"{SM}:db", f"{DB}:password::", f"{SM}:a+b=c.d@e_f/g-h", API_KEY,
    "arn:aws:ssm:us-east-1:123456789012:parameter/x",
    "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:db-AbCdEf",
    "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/a/b.c_d-e", f"{SM}:" + "n" * 512,
])
def test_secret_references_that_name_a_secret_or_a_parameter(example_spec: dict[str, Any], arn: str) -> None:
    example_spec["container"]["secrets"] = {"DB_PASSWORD": arn}
    assert parse(example_spec).container.secrets == {"DB_PASSWORD": arn}


@pytest.mark.parametrize("arn", [
    "", "db-password", "arn:aws:secretsmanager:eu-west-1:123456789012:db", f"{SM}:", f"{SM}:db password",
    f"{DB}:password", f"{DB}:password:AWSCURRENT:", f"{DB}::", f"{DB}:pass word::",
    "arn:aws:ssm:eu-west-1:1234:parameter/x",
    "arn:aws:ssm:eu-west-1:123456789012:parameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/",
    "arn:aws:ssm:eu-west-1:123456789012:parameter//x", "arn:aws:ssm:eu-west-1:123456789012:parameter/x/",
    "arn:aws:s3:::bucket/key", "arn:aws:kms:eu-west-1:123456789012:key/abc", f"{DB}\n", f" {DB}", f"{DB}$(id)",
    f"{DB}`id`", f"{DB}'", "--privileged", f"-{DB}", f"{SM}:é", f"{SM}:" + "n" * 513, f"{SM}:" + "n" * 4096,
    "arn:aws:secretsmanager:EU-west-1:123456789012:secret:db", 12345,
])
def test_secret_references_anything_else_is_refused_naming_the_field(example_spec: dict[str, Any], arn: Any) -> None:
    example_spec["container"]["secrets"] = {"DB_PASSWORD": arn}
    assert "container.secrets.DB_PASSWORD" in error_of(example_spec)


@pytest.mark.parametrize("name", ["", "1DB", "DB-PASSWORD", "DB PASSWORD", "DB=X", "é", "A" * 129, "--privileged"])
def test_secret_names_follow_envs_rule(example_spec: dict[str, Any], name: str) -> None:
    example_spec["container"]["secrets"] = {name: DB}
    assert "container.secrets" in error_of(example_spec)


def test_a_name_in_both_env_and_secrets_is_refused(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["env"] = {"APP_MODE": "production", "DB_PASSWORD": "plain"}
    example_spec["container"]["secrets"] = {"DB_PASSWORD": DB}
    message = error_of(example_spec)
    assert "container" in message and "DB_PASSWORD is in both env and secrets" in message


def test_secrets_are_bounded_in_number(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["secrets"] = {f"S{n}": DB for n in range(MAX_SECRETS)}
    assert len(parse(example_spec).container.secrets) == MAX_SECRETS
    example_spec["container"]["secrets"] = {f"S{n}": DB for n in range(MAX_SECRETS + 1)}
    assert "container.secrets" in error_of(example_spec)


@pytest.mark.parametrize("arn", [API_KEY, f"{REGISTRY}:password::", "docker.io", "", f"{REGISTRY} ", 5])
def test_registry_credentials_name_one_whole_secrets_manager_secret(example_spec: dict[str, Any], arn: Any) -> None:
    example_spec["container"]["registry_credentials"] = arn
    assert "container.registry_credentials" in error_of(example_spec)


def test_secrets_share_the_commands_budget_with_env_and_the_run_options(example_spec: dict[str, Any]) -> None:
    long_arn = f"{SM}:" + "n" * 512
    example_spec["container"]["secrets"] = {f"S{n:02d}": long_arn for n in range(MAX_SECRETS)}
    example_spec["container"]["env"] = {f"V{n}": "v" * 2000 for n in range(6)}
    message = error_of(example_spec)
    assert f"at most {MAX_ENV_COMMAND_BYTES}" in message and "secrets (" in message


def test_the_script_gets_each_arn_and_never_a_value(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["secrets"] = {"DB_PASSWORD": DB, "API_KEY": API_KEY}
    example_spec["container"]["registry_credentials"] = REGISTRY
    spec = parse(example_spec)
    args = start_container_args(DeployCommand("d-1", parse_image_ref("registry.example.com/web:1"), spec.container,
                                              None))
    assert args[args.index("--secret"):] == ["--secret", f"API_KEY={API_KEY}", "--secret", f"DB_PASSWORD={DB}",
                                             "--registry-credentials", REGISTRY]
    assert secret_args(spec.container) == args[args.index("--secret"):]
    assert command_bytes(secret_args(spec.container)) + command_bytes(run_option_args(spec.container)) + \
        env_command_bytes(spec.container.env) < MAX_ENV_COMMAND_BYTES


def test_the_openapi_document_describes_secrets_and_registry_credentials() -> None:
    from app import api
    from chalicelib.api.openapi import document

    schemas = document(api.table)["components"]["schemas"]
    container = next(schema for name, schema in schemas.items() if name.startswith("ContainerSpec"))["properties"]
    assert {"secrets", "registry_credentials"} <= set(container)
    assert "\\Z" not in json.dumps(container)
    assert container["secrets"]["maxProperties"] == MAX_SECRETS
