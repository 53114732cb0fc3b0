"""Values that look like shell must be rejected or reach docker verbatim; no payload may ever run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import Engine, Target, http_get, run_script


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
