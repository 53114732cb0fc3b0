"""stop_container.sh and validate_service.sh against podman."""

from __future__ import annotations

import os

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import Engine, Target, free_port, http_get, run_script


def test_stop_removes_the_container_and_is_idempotent(engine: Engine, deployed_v1: Target) -> None:
    first = engine.run("stop_container.sh", "--name", deployed_v1.name, "--stop-timeout", "2")
    second = engine.run("stop_container.sh", "--name", deployed_v1.name)

    assert first.returncode == ScriptExit.OK, first.stdout + first.stderr
    assert second.returncode == ScriptExit.OK, second.stdout + second.stderr
    assert engine.service_containers(deployed_v1.name) == set()
    assert http_get(deployed_v1.port)[0] == 0


def test_stop_with_nothing_running_exits_0(engine: Engine, target: Target) -> None:
    result = engine.run("stop_container.sh", "--name", target.name)

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert "nothing to stop" in result.stdout


def test_stop_reads_the_name_from_deploy_env(engine: Engine, deployed_v1: Target, tmp_path) -> None:
    config = tmp_path / "deploy.env"
    config.write_text(f"IMAGE=ignored:latest\nCONTAINER_NAME={deployed_v1.name}\nSTOP_TIMEOUT=2\nENV_A=b\n")

    result = engine.run("stop_container.sh", "--config", str(config))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert deployed_v1.name not in engine.container_names()


def test_stop_tolerates_a_missing_docker_and_an_unreadable_config(tmp_path) -> None:
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    (empty_bin / "docker").write_text("#!/bin/sh\nexit 1\n")
    (empty_bin / "docker").chmod(0o755)
    no_docker = {**env, "PATH": f"{empty_bin}:/usr/bin:/bin"}

    missing_docker = run_script("stop_container.sh", "--name", "web", env=no_docker)
    missing_config = run_script("stop_container.sh", "--config", str(tmp_path / "absent.env"), env=no_docker)

    assert missing_docker.returncode == ScriptExit.OK
    assert "docker is missing or does not answer" in missing_docker.stderr
    assert missing_config.returncode == ScriptExit.OK
    assert "nothing stopped" in missing_config.stderr


def test_stop_without_a_name_is_a_usage_error() -> None:
    result = run_script("stop_container.sh", env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE


def test_validate_passes_on_a_healthy_service(engine: Engine, deployed_v1: Target, tmp_path) -> None:
    config = tmp_path / "deploy.env"
    config.write_text(f"CONTAINER_NAME={deployed_v1.name}\nHEALTH_PORT={deployed_v1.port}\nHEALTH_PATH=/health\n"
                      f"IMAGE={engine.image('v1')}\nPORTS={deployed_v1.port}:8080\n")

    result = engine.run("validate_service.sh", "--config", str(config), "--health-timeout", "5")

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert "berth-result: ok" in result.stdout


def test_validate_fails_when_the_endpoint_is_unhealthy(engine: Engine, deployed_v1: Target) -> None:
    result = engine.run("validate_service.sh", "--name", deployed_v1.name, "--health-port", str(deployed_v1.port),
                        "--health-path", "/missing", "--health-timeout", "2", "--health-interval", "1")

    assert result.returncode == ScriptExit.HEALTH_FAILED_NOT_RESTORED, result.stdout + result.stderr
    assert f"last 50 log lines of container {deployed_v1.name}" in result.stdout
    assert http_get(deployed_v1.port) == (200, "berth-test v1"), "validate must not touch the service"


def test_validate_fails_fast_when_the_container_is_gone(engine: Engine, target: Target) -> None:
    result = engine.run("validate_service.sh", "--name", target.name, "--health-port", str(free_port()),
                        "--health-timeout", "30")

    assert result.returncode == ScriptExit.HEALTH_FAILED_NOT_RESTORED
    assert "is not running" in result.stdout
