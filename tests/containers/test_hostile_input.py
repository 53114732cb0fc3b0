"""Values that look like shell must be rejected or reach docker verbatim; no payload may ever run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import SERVE_COMMAND, Engine, Target, http_get, run_script


def payloads(marker: Path) -> list[str]:
    return [f"$(touch {marker})", f"`touch {marker}`", f"x;touch {marker}", f"x && touch {marker}",
            f"x|touch {marker}", f"x\ntouch {marker}"]


@pytest.mark.parametrize("field", ["--name", "--image"])
@pytest.mark.parametrize("index", range(6))
def test_hostile_name_or_image_is_rejected(tmp_path: Path, field: str, index: int) -> None:
    marker = tmp_path / "pwned"
    value = payloads(marker)[index]
    args = {"--name": "web", "--image": "repo/app:1", field: value}

    result = run_script("start_container.sh", "--image", args["--image"], "--name", args["--name"],
                        env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert "berth-error: 2 USAGE" in result.stdout
    assert not marker.exists()


@pytest.mark.parametrize("key", ["IMAGE", "CONTAINER_NAME", "PORTS", "HEALTH_PATH", "HEALTH_PORT", "DRAIN_TIMEOUT",
                                 "PROXY_IMAGE", "ALLOW_MUTABLE_TAGS"])
def test_hostile_deploy_env_values_are_rejected_without_running(tmp_path: Path, key: str) -> None:
    marker = tmp_path / "pwned"
    settings = {"IMAGE": "repo/app:1", "CONTAINER_NAME": "web", key: f"$(touch {marker}) `touch {marker}`"}
    config = tmp_path / "deploy.env"
    config.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    result = run_script("start_container.sh", "--config", str(config), env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert not marker.exists()


def test_hostile_env_values_reach_the_container_verbatim(engine: Engine, target: Target, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    values = [p for p in payloads(marker) if "\n" not in p] + ["it's \"quoted\" \\ $HOME ${PATH}"]
    env_args = [arg for i, value in enumerate(values) for arg in ("--env", f"HOSTILE_{i}={value}")]

    result = engine.run("start_container.sh", *target.deploy_args(engine, "v1", *env_args))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    container_env = engine.inspect(target.name)["Config"]["Env"]  # type: ignore[index]
    for i, value in enumerate(values):
        assert f"HOSTILE_{i}={value}" in container_env
    assert not marker.exists()


def test_env_value_with_a_newline_is_rejected(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    result = run_script("start_container.sh", "--image", "repo/app:1", "--name", "web",
                        "--env", f"X=a\ntouch {marker}", env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE
    assert not marker.exists()


RUN_OPTION_FLAGS = ["--user", "--workdir", "--volume", "--memory", "--memory-reservation", "--cpus", "--log-driver",
                    "--label", "--network", "--restart", "--ulimit", "--add-host", "--pid", "--device", "--cap-add"]


@pytest.mark.parametrize("flag", RUN_OPTION_FLAGS)
@pytest.mark.parametrize("index", range(6))
def test_hostile_run_options_are_rejected_by_the_script(tmp_path: Path, flag: str, index: int) -> None:
    """The CodeDeploy path has no Lambda in front: start_container.sh refuses these itself, before docker."""
    marker = tmp_path / "pwned"
    value = payloads(marker)[index]

    result = run_script("start_container.sh", "--image", "repo/app:1", "--name", "web", "--privileged", flag, value,
                        env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("value", ["--privileged", "-v", "/:/host", "--volume=/:/host", "--network=host"])
@pytest.mark.parametrize("flag", ["--user", "--volume", "--network", "--restart", "--memory", "--add-host"])
def test_an_option_smuggled_as_a_value_is_rejected(flag: str, value: str) -> None:
    result = run_script("start_container.sh", "--image", "repo/app:1", "--name", "web", flag, value,
                        env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr


@pytest.mark.parametrize("key", ["VOLUME", "USER", "NETWORK", "LABEL", "LOG_OPT", "ULIMIT", "EXTRA_HOST", "MEMORY",
                                 "READ_ONLY", "PRIVILEGED", "RESTART", "CPUS"])
def test_hostile_deploy_env_run_options_are_rejected_without_running(tmp_path: Path, key: str) -> None:
    marker = tmp_path / "pwned"
    config = tmp_path / "deploy.env"
    config.write_text(f"IMAGE=repo/app:1\nCONTAINER_NAME=web\nLOG_DRIVER=json-file\n"
                      f"{key}=$(touch {marker}) `touch {marker}`\n")

    result = run_script("start_container.sh", "--config", str(config), env=dict(os.environ))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert not marker.exists()


def test_hostile_command_arguments_and_labels_reach_the_container_verbatim(engine: Engine, target: Target,
                                                                          tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    values = [p for p in payloads(marker) if "\n" not in p] + [
        "it's \"quoted\" \\ $HOME ${PATH}", "--privileged", "-v", "/:/host", "é ✓ 😀", "x" * 4096]
    # Label values are at most 1024 characters: the 4 KB one goes to the command only.
    labels = [arg for i, value in enumerate(values[:-1]) for arg in ("--label", f"hostile.{i}={value}")]
    # The container's argv: the serving shell first, then the payloads as its positional parameters, never run.
    command = ["--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", SERVE_COMMAND, "--cmd", "serve",
               *[arg for value in values for arg in ("--cmd", value)]]

    result = engine.run("start_container.sh", *target.deploy_args(engine, "v1", *labels, *command))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    facts = engine.inspect(target.name)
    assert facts is not None
    assert facts["Config"]["Cmd"] == ["-c", SERVE_COMMAND, "serve", *values]
    for i, value in enumerate(values[:-1]):
        assert facts["Config"]["Labels"][f"hostile.{i}"] == value
    assert facts["HostConfig"]["Privileged"] is False
    assert not marker.exists()
