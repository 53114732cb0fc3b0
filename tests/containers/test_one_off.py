"""A one-off run (`berth exec`, a deployment's release task) on a real engine: start_container.sh --one-off with the
arguments berth's Lambda builds for it (container_commands.one_off_args), secrets read by a stand-in `aws` as in
test_secrets.py. The run gets the service's env, secrets and volumes, its exit code is the script's, its output is
its own, and nothing of it stays: no container, no env file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.container_commands import OneOffRun, one_off_args
from chalicelib.domain.exit_codes import ScriptExit
from chalicelib.domain.spec import TargetSpec, parse_pipeline_parameters
from tests.containers.support import Engine, Target, run_script
from tests.containers.test_secrets import DB, DB_VALUE, MISSING, Aws, aws, leaks

__all__ = ["aws"]     # the stand-in aws's fixture


def one_off(engine: Engine, target: Target, aws: Aws, container: dict[str, Any], command: tuple[str, ...],
            timeout_seconds: int = 60) -> tuple[str, Any]:
    spec = parse_pipeline_parameters(json.dumps({
        "target": "web-test", "instances": {"tags": {"app": "web"}},
        "container": {"name": target.name, "ports": [f"{target.port}:8080"], **container},
        "image": engine.image("v1")}))
    assert isinstance(spec, TargetSpec)
    run_id = uuid.uuid4().hex[:12]
    run = OneOffRun(run_id, engine.pinned("v1"), spec.container, command, timeout_seconds)
    return "berth-exec-" + run_id, run_script("start_container.sh", *one_off_args(run), env=aws.env, timeout=120)


def test_a_one_off_run_gets_the_services_env_secrets_and_volumes_and_exits_with_its_code(
        engine: Engine, target: Target, aws: Aws, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    container = {"env": {"APP_MODE": "test"}, "secrets": {"DB_PASSWORD": DB}, "volumes": [f"{out}:/out"]}
    command = ("sh", "-c", 'printf %s "$DB_PASSWORD" > /out/secret; echo "mode=$APP_MODE"; echo oops >&2; exit 7')

    name, result = one_off(engine, target, aws, container, command)

    assert result.returncode == 7, result.stdout + result.stderr
    assert (result.stdout, result.stderr) == ("mode=test\noops\n", "")
    assert (out / "secret").read_text() == DB_VALUE
    assert leaks(result.stdout + result.stderr) == []
    assert name not in engine.container_names() and target.name not in engine.container_names()
    assert list(aws.secrets_dir.iterdir()) == []


def test_a_run_that_overstays_is_stopped_and_removed(engine: Engine, target: Target, aws: Aws) -> None:
    name, result = one_off(engine, target, aws, {}, ("sleep", "60"), timeout_seconds=2)
    assert result.returncode in (124, 137), result.stdout + result.stderr
    assert "berth-exec: stopped after 2 seconds" in result.stdout
    assert name not in engine.container_names()


@pytest.mark.parametrize("secrets", [{"DB_PASSWORD": MISSING}])
def test_a_secret_that_cannot_be_read_runs_nothing_and_says_why_on_stderr(engine: Engine, target: Target, aws: Aws,
                                                                           secrets: dict[str, str]) -> None:
    name, result = one_off(engine, target, aws, {"secrets": secrets}, ("echo", "ran"))
    assert result.returncode == ScriptExit.SECRET_UNREADABLE
    assert result.stdout == ""
    assert "berth-error: 22 SECRET_UNREADABLE" in result.stderr and "DB_PASSWORD" in result.stderr
    assert name not in engine.container_names()
    assert list(aws.secrets_dir.iterdir()) == []
