"""Secrets by reference on a real engine: the value reaches the container's environment and nothing else.

A stand-in `aws` first on the script's PATH serves fixed secrets (Secrets Manager and SSM parameters, answering as
`--query ... --output text` does) and records the arguments of every call. The arguments come from
`start_container_args` for a spec parsed at the edge, so the path checked is the Lambda's: spec -> SSM command ->
start_container.sh -> aws -> an env file -> docker run --env-file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.command import SHIPPED_SCRIPTS, DeployCommand, build_shell_commands
from chalicelib.domain.exit_codes import ScriptExit
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.spec import TargetSpec, parse_pipeline_parameters
from tests.containers.support import SCRIPTS_DIR, Engine, Target, http_get, run_script
from tests.containers.test_run_options import spec_args

SM = "arn:aws:secretsmanager:eu-west-1:123456789012:secret"
DB = f"{SM}:prod/db-AbCdEf"
JSON_SECRET = f"{SM}:prod/app-QwErTy"
API_KEY = "arn:aws:ssm:eu-west-1:123456789012:parameter/web/api-key"
REGISTRY = f"{SM}:registry/login-Zx9Yw8"
MISSING = f"{SM}:prod/gone-XyZ123"
# Values a shell, an env file or a JSON decoder could trip on; each unique enough to search for.
DB_VALUE = "db-S3cr3t 'quoted' \"double\" $(touch /tmp/berth-pwned) `id` ✓ --privileged ="
APP_VALUE = "app-Json-Key-V4lue"
API_VALUE = "api-Param-V4lue-$HOME"
REGISTRY_PASSWORD = "registry-P4ssw0rd"
VALUES = (DB_VALUE, APP_VALUE, API_VALUE, REGISTRY_PASSWORD)
SECRETS: dict[str, str] = {
    DB: DB_VALUE,
    JSON_SECRET: json.dumps({"password": APP_VALUE, "user": "app"}),
    API_KEY: API_VALUE,
    REGISTRY: json.dumps({"username": "berth", "password": REGISTRY_PASSWORD}),
    f"{SM}:prod/multiline-AbCdEf": "line one\nline two",
}
STAND_IN_AWS = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["BERTH_TEST_AWS_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
secrets = json.load(open(os.environ["BERTH_TEST_AWS_SECRETS"]))
def arg(flag):
    return args[args.index(flag) + 1]
if args[:2] == ["secretsmanager", "get-secret-value"]:
    key, operation, query = arg("--secret-id"), "GetSecretValue", "SecretString"
elif args[:2] == ["ssm", "get-parameter"] and "--with-decryption" in args:
    key, operation, query = arg("--name"), "GetParameter", "Parameter.Value"
else:
    sys.exit("stand-in aws: unexpected call " + " ".join(args))
if key not in secrets:
    sys.stderr.write(f"\\nAn error occurred (AccessDeniedException) when calling the {operation} operation: "
                     f"not authorized to read {key}\\n")
    sys.exit(254)
assert arg("--query") == query and arg("--output") == "text" and arg("--region") == key.split(":")[3]
print(secrets[key])
"""


@dataclass
class Aws:
    calls_file: Path
    secrets_dir: Path
    env: dict[str, str]

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]


@pytest.fixture
def aws(engine: Engine, tmp_path: Path) -> Iterator[Aws]:
    bin_dir = tmp_path / "aws-bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(STAND_IN_AWS)
    (bin_dir / "aws").chmod(0o755)
    # docker records its login and logout calls (their arguments, not stdin), then runs as podman.
    (bin_dir / "docker").write_text('#!/bin/sh\ncase "$1" in login|logout) '
                                    'printf \'%s\\n\' "$*" >>"$BERTH_TEST_LOGINS" ;; esac\nexec podman "$@"\n')
    (bin_dir / "docker").chmod(0o755)
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps(SECRETS))
    secrets_dir = tmp_path / "secrets-tmpfs"
    secrets_dir.mkdir()
    (tmp_path / "auth.json").write_text('{"auths": {}}')
    env = {**engine.env, "PATH": f"{bin_dir}{os.pathsep}{engine.env['PATH']}",
           "BERTH_TEST_AWS_CALLS": str(tmp_path / "aws-calls.jsonl"), "BERTH_TEST_AWS_SECRETS": str(secrets_file),
           "BERTH_SECRETS_DIR": str(secrets_dir),
           "BERTH_TEST_LOGINS": str(tmp_path / "logins.txt"), "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    yield Aws(tmp_path / "aws-calls.jsonl", secrets_dir, env)


def run(aws: Aws, *args: str) -> Any:
    return run_script("start_container.sh", *args, env=aws.env)


def ssm_command_text(engine: Engine, target: Target, container: dict[str, Any]) -> str:
    spec = parse_pipeline_parameters(json.dumps({
        "target": "web-test", "instances": {"tags": {"app": "web"}},
        "container": {"name": target.name, "ports": [f"{target.port}:8080"], **container},
        "image": engine.image("v1")}))
    assert isinstance(spec, TargetSpec)
    scripts = {name: (SCRIPTS_DIR / name).read_text() for name in SHIPPED_SCRIPTS}
    command = DeployCommand("d-test", parse_image_ref(engine.image("v1")), spec.container, spec.health_check)
    return json.dumps({"commands": build_shell_commands(command, scripts)}, ensure_ascii=False)


def env_in(engine: Engine, container: str, variable: str) -> str:
    """The variable as the container's own processes see it."""
    return engine.podman("exec", container, "sh", "-c", f'printf "%s" "${variable}"').stdout


def leaks(text: str) -> list[str]:
    return [value for value in VALUES if value in text]


def test_a_secrets_value_reaches_the_container_and_nothing_else(engine: Engine, target: Target, aws: Aws) -> None:
    container = {"secrets": {"DB_PASSWORD": DB, "APP_PASSWORD": f"{JSON_SECRET}:password::", "API_KEY": API_KEY},
                 "registry_credentials": REGISTRY, "env": {"APP_MODE": "test"}}

    result = run(aws, *spec_args(engine, target, "v1", container))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    facts = engine.inspect(target.name)
    assert facts is not None
    assert {f"DB_PASSWORD={DB_VALUE}", f"APP_PASSWORD={APP_VALUE}", f"API_KEY={API_VALUE}",
            "APP_MODE=test"} <= set(facts["Config"]["Env"])
    assert env_in(engine, target.name, "DB_PASSWORD") == DB_VALUE
    # Nowhere else: the SSM command, the script's output, the container's command line, any other container.
    assert leaks(ssm_command_text(engine, target, container)) == []
    assert leaks(result.stdout + result.stderr) == []
    assert leaks(json.dumps([facts.get("Args"), facts["Config"].get("Cmd"), facts["Config"].get("CreateCommand"),
                             facts.get("Path"), facts["Config"]["Labels"]], ensure_ascii=False)) == []
    others = engine.container_names() - {target.name}
    assert target.name + "-berth-proxy" in others
    for other in others:
        assert leaks(json.dumps(engine.inspect(other), ensure_ascii=False)) == [], other
    # Nothing left behind: the env file is gone, and no file of the run holds a value.
    assert list(aws.secrets_dir.iterdir()) == []
    for directory in (Path(engine.env["BERTH_STATE_DIR"]), Path(engine.env["BERTH_LOCK_DIR"])):
        for path in directory.rglob("*"):
            assert not path.is_file() or leaks(path.read_text(errors="replace")) == [], path
    assert not Path("/tmp/berth-pwned").exists()
    # The instance read each secret itself, by ARN (the JSON key read from the whole secret), and logged out.
    calls = aws.calls()
    assert leaks(json.dumps(calls, ensure_ascii=False)) == []
    assert sorted(c[c.index("--secret-id") + 1] for c in calls if c[0] == "secretsmanager") == \
        sorted([DB, JSON_SECRET, REGISTRY])
    assert [c for c in calls if c[0] == "ssm"] == [["ssm", "get-parameter", "--region", "eu-west-1", "--name", API_KEY,
                                                    "--with-decryption", "--query", "Parameter.Value", "--output",
                                                    "text"]]
    assert json.loads(Path(aws.env["REGISTRY_AUTH_FILE"]).read_text()) == {"auths": {}}
    assert Path(aws.env["BERTH_TEST_LOGINS"]).read_text().splitlines() == [
        f"login --username=berth --password-stdin {engine.registry}", f"logout {engine.registry}"]


def test_a_service_with_secrets_swaps_on_every_deploy_to_take_a_rotated_value(engine: Engine, target: Target,
                                                                              aws: Aws) -> None:
    container = {"secrets": {"DB_PASSWORD": DB}}
    first = run(aws, *spec_args(engine, target, "v1", container))
    rotated = {**SECRETS, DB: "rotated-V4lue"}
    Path(aws.env["BERTH_TEST_AWS_SECRETS"]).write_text(json.dumps(rotated))

    again = run(aws, *spec_args(engine, target, "v1", container))

    assert first.returncode == again.returncode == ScriptExit.OK, again.stdout + again.stderr
    assert "berth-step: unchanged" not in again.stdout
    assert env_in(engine, target.name, "DB_PASSWORD") == "rotated-V4lue"


@pytest.mark.parametrize(("secret", "why"), [
    (MISSING, "AccessDeniedException"),
    (f"{JSON_SECRET}:no_such_key::", "no_such_key"),
    (f"{SM}:prod/multiline-AbCdEf", "line break"),
])
def test_a_secret_that_cannot_be_read_fails_before_anything_stops(engine: Engine, deployed_v1: Target, aws: Aws,
                                                                   secret: str, why: str) -> None:
    target = deployed_v1
    old_id = engine.inspect(target.name)["Id"]  # type: ignore[index]

    result = run(aws, *spec_args(engine, target, "v2", {"secrets": {"DB_PASSWORD": DB, "API_TOKEN": secret}}))

    assert result.returncode == ScriptExit.SECRET_UNREADABLE, result.stdout + result.stderr
    assert "berth-error: 22 SECRET_UNREADABLE" in result.stdout
    assert "the secret API_TOKEN" in result.stderr and secret in result.stderr and why in result.stderr
    assert leaks(result.stdout + result.stderr) == [] and "line one" not in result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    assert engine.inspect(target.name)["Id"] == old_id  # type: ignore[index]
    assert engine.service_containers(target.name) == {target.name, target.name + "-berth-proxy"}
    assert list(aws.secrets_dir.iterdir()) == []


def test_unreadable_registry_credentials_fail_before_the_pull(engine: Engine, target: Target, aws: Aws) -> None:
    result = run(aws, *spec_args(engine, target, "v1", {"registry_credentials": f"{SM}:registry/gone-AbCdEf"}))

    assert result.returncode == ScriptExit.SECRET_UNREADABLE, result.stdout + result.stderr
    assert "the registry credentials" in result.stderr and "registry/gone-AbCdEf" in result.stderr
    assert "berth-step: pull" not in result.stdout
    assert engine.service_containers(target.name) == set()


@pytest.fixture
def revision(engine: Engine, target: Target, tmp_path: Path) -> Path:
    root = tmp_path / "revision"
    root.mkdir()
    (root / "deploy.env").write_text(
        f"IMAGE={engine.pinned('v1')}\nCONTAINER_NAME={target.name}\nPORTS={target.port}:8080\n"
        f"HEALTH_PORT={target.port}\nHEALTH_PATH=/health\nHEALTH_TIMEOUT=10\nHEALTH_INTERVAL=1\nSTOP_TIMEOUT=2\n"
        f"SECRET_DB_PASSWORD={DB}\nSECRET_API_KEY={API_KEY}\nREGISTRY_CREDENTIALS={REGISTRY}\n")
    return root


def test_the_codedeploy_path_takes_secrets_from_deploy_env(engine: Engine, target: Target, aws: Aws,
                                                             revision: Path) -> None:
    result = run(aws, "--config", str(revision / "deploy.env"))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    env = set(engine.inspect(target.name)["Config"]["Env"])  # type: ignore[index]
    assert {f"DB_PASSWORD={DB_VALUE}", f"API_KEY={API_VALUE}"} <= env
    assert leaks(result.stdout + result.stderr) == []
    assert list(aws.secrets_dir.iterdir()) == []


@pytest.mark.parametrize("line", [
    "SECRET_DB_PASSWORD=not-an-arn", f"SECRET_DB-PASSWORD={DB}", f"SECRET_APP_MODE={DB}\nENV_APP_MODE=x",
    f"SECRET_DB_PASSWORD={DB}$(touch /tmp/berth-pwned)", f"REGISTRY_CREDENTIALS={API_KEY}",
    f"REGISTRY_CREDENTIALS={REGISTRY}:password::", "SECRET_DB_PASSWORD=--privileged",
])
def test_a_bad_secret_in_deploy_env_is_refused_before_anything(engine: Engine, target: Target, aws: Aws,
                                                                revision: Path, line: str) -> None:
    with (revision / "deploy.env").open("a") as env_file:
        env_file.write(line + "\n")

    result = run(aws, "--config", str(revision / "deploy.env"))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert aws.calls() == []
    assert engine.service_containers(target.name) == set()
    assert not Path("/tmp/berth-pwned").exists()
