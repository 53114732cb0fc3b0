"""start_container.sh against podman: first deploy, redeploy, and every way a deploy can fail."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import Engine, Target, http_get, run_script


def steps(stdout: str) -> list[str]:
    return re.findall(r"^berth-step: (\S+)$", stdout, flags=re.MULTILINE)


def test_first_deploy_on_a_clean_host_serves_v1(engine: Engine, target: Target) -> None:
    result = engine.run("start_container.sh", *target.deploy_args(engine, "v1"))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    state = engine.inspect(target.name)
    assert state is not None and state["State"]["Running"]
    assert steps(result.stdout) == ["docker", "pull", "start", "health", "switch", "promote"]
    digest = re.search(r"^berth-digest: (\S+)$", result.stdout, flags=re.MULTILINE)
    assert digest is not None
    assert re.fullmatch(re.escape(f"{engine.registry}/berth/web") + r"@sha256:[0-9a-f]{64}", digest.group(1))
    assert result.stdout.rstrip().splitlines()[-1] == "berth-result: ok"


def test_redeploy_on_the_same_name_and_port_swaps_to_v2(engine: Engine, deployed_v1: Target) -> None:
    old_id = engine.inspect(deployed_v1.name)["Id"]  # type: ignore[index]

    result = engine.run("start_container.sh", *deployed_v1.deploy_args(engine, "v2"))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(deployed_v1.port) == (200, "berth-test v2")
    assert engine.inspect(deployed_v1.name)["Id"] != old_id  # type: ignore[index]
    names = engine.container_names()
    assert deployed_v1.name in names
    assert f"{deployed_v1.name}-berth-previous" not in names
    assert old_id not in engine.podman("ps", "-a", "--no-trunc", "--format", "{{.ID}}").stdout
    assert engine.image_exists(engine.image("v1")), "the previous image must stay for a pull-free rollback"
    assert "already in use" not in result.stderr and "already allocated" not in result.stderr


def test_unhealthy_image_is_rolled_back_to_the_previous_container(engine: Engine, deployed_v1: Target) -> None:
    result = engine.run("start_container.sh",
                        *deployed_v1.deploy_args(engine, "broken", "--health-timeout", "3"))

    assert result.returncode == ScriptExit.HEALTH_FAILED_RESTORED, result.stdout + result.stderr
    assert "broken-build: /health is missing" in result.stdout
    assert "berth-step: restore" in result.stdout
    assert "berth-result: ok" not in result.stdout
    assert http_get(deployed_v1.port) == (200, "berth-test v1")
    assert f"{deployed_v1.name}-berth-previous" not in engine.container_names()


def test_container_that_exits_at_once_fails_the_running_check_and_is_rolled_back(
    engine: Engine, deployed_v1: Target
) -> None:
    args = ["--image", engine.image("crash"), "--name", deployed_v1.name, "--port", f"{deployed_v1.port}:8080",
            "--stop-timeout", "2"]

    result = engine.run("start_container.sh", *args)

    assert result.returncode == ScriptExit.HEALTH_FAILED_RESTORED, result.stdout + result.stderr
    assert "crash-build: exiting at once" in result.stdout
    assert http_get(deployed_v1.port) == (200, "berth-test v1")


def test_unhealthy_first_deploy_has_nothing_to_restore(engine: Engine, target: Target) -> None:
    result = engine.run("start_container.sh", *target.deploy_args(engine, "broken", "--health-timeout", "2"))

    assert result.returncode == ScriptExit.HEALTH_FAILED_NOT_RESTORED, result.stdout + result.stderr
    assert target.name not in engine.container_names()


def test_container_that_cannot_start_is_removed_and_the_previous_restored(
    engine: Engine, deployed_v1: Target
) -> None:
    result = engine.run("start_container.sh", *deployed_v1.deploy_args(engine, "nostart"))

    assert result.returncode == ScriptExit.START_FAILED, result.stdout + result.stderr
    assert http_get(deployed_v1.port) == (200, "berth-test v1")
    assert engine.inspect(deployed_v1.name)["Config"]["Image"] == engine.image("v1")  # type: ignore[index]


def test_missing_image_fails_the_pull_and_never_touches_the_running_container(
    engine: Engine, deployed_v1: Target
) -> None:
    started_at = engine.inspect(deployed_v1.name)["State"]["StartedAt"]  # type: ignore[index]
    answers: list[tuple[int, str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            answers.append(http_get(deployed_v1.port))
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        result = engine.run("start_container.sh", *deployed_v1.deploy_args(engine, "no-such-tag"))
    finally:
        done.set()
        poller.join()

    assert result.returncode == ScriptExit.PULL_FAILED, result.stdout + result.stderr
    assert "berth-error: 21 PULL_FAILED" in result.stdout
    assert "stop-previous" not in steps(result.stdout)
    assert answers and set(answers) == {(200, "berth-test v1")}
    assert engine.inspect(deployed_v1.name)["State"]["StartedAt"] == started_at  # type: ignore[index]


def test_deploy_env_is_parsed_verbatim_and_later_flags_override_it(
    engine: Engine, target: Target, tmp_path
) -> None:
    payload = tmp_path / "pwned"
    config = tmp_path / "deploy.env"
    config.write_text(
        "# berth test revision\n"
        "\n"
        f"IMAGE={engine.image('v1')}\n"
        f"CONTAINER_NAME={target.name}\n"
        "PORTS=1:8080\n"
        f"HEALTH_PORT={target.port}\n"
        "HEALTH_PATH=/health\n"
        "HEALTH_TIMEOUT=10\n"
        "HEALTH_INTERVAL=1\n"
        "STOP_TIMEOUT=2\n"
        f"ENV_GREETING=hello $(touch {payload}) `touch {payload}`; world\n"
        "ENV_QUOTED=\"with spaces\"\n"
        "ENV_OVERRIDDEN=from-file\n"
    )

    result = engine.run("start_container.sh", "--config", str(config), "--image", engine.image("v2"),
                        "--port", f"{target.port}:8080", "--env", "OVERRIDDEN=from-flag")

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v2")
    container_env = engine.inspect(target.name)["Config"]["Env"]  # type: ignore[index]
    assert f"GREETING=hello $(touch {payload}) `touch {payload}`; world" in container_env
    assert "QUOTED=with spaces" in container_env
    assert "OVERRIDDEN=from-flag" in container_env
    assert "OVERRIDDEN=from-file" not in container_env
    assert not payload.exists()


def test_two_concurrent_deploys_of_one_name_take_turns(engine: Engine, deployed_v1: Target) -> None:
    results = []

    def deploy() -> None:
        results.append(engine.run("start_container.sh", *deployed_v1.deploy_args(engine, "v2")))

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.returncode for r in results] == [ScriptExit.OK, ScriptExit.OK], [r.stderr for r in results]
    assert http_get(deployed_v1.port) == (200, "berth-test v2")
    assert engine.service_containers(deployed_v1.name) == {deployed_v1.name, f"{deployed_v1.name}-berth-proxy"}


def test_ecr_login_pipes_the_password_to_docker_login(engine: Engine, target: Target, tmp_path) -> None:
    bin_dir = tmp_path / "aws-bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/aws.log"\necho not-a-real-password\n')
    (bin_dir / "aws").chmod(0o755)
    env = {**engine.env, "PATH": f"{bin_dir}:{engine.env['PATH']}",
           "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}

    result = run_script("start_container.sh", *target.deploy_args(engine, "v1", "--ecr-login", "eu-west-1"), env=env)

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert (tmp_path / "aws.log").read_text().split() == ["ecr", "get-login-password", "--region", "eu-west-1"]
    assert steps(result.stdout)[:3] == ["docker", "login", "pull"]


def test_failed_ecr_login_exits_20_before_touching_anything(engine: Engine, deployed_v1: Target, tmp_path) -> None:
    bin_dir = tmp_path / "aws-bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text("#!/bin/sh\necho 'Unable to locate credentials' >&2\nexit 255\n")
    (bin_dir / "aws").chmod(0o755)
    env = {**engine.env, "PATH": f"{bin_dir}:{engine.env['PATH']}"}

    result = run_script("start_container.sh", *deployed_v1.deploy_args(engine, "v2", "--ecr-login", "eu-west-1"),
                        env=env)

    assert result.returncode == ScriptExit.REGISTRY_LOGIN_FAILED, result.stdout + result.stderr
    assert http_get(deployed_v1.port) == (200, "berth-test v1")


def test_unreachable_docker_exits_10(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)

    result = run_script("start_container.sh", "--image", "repo/app:1", "--name", "web",
                        env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"})

    assert result.returncode == ScriptExit.DOCKER_UNAVAILABLE
    assert "berth-error: 10 DOCKER_UNAVAILABLE" in result.stdout


def test_deploy_by_digest_pins_the_exact_image(engine: Engine, deployed_v1: Target) -> None:
    first = engine.podman("image", "inspect", "--format", "{{index .RepoDigests 0}}", engine.image("v1")).stdout
    pinned = first.strip()
    assert "@sha256:" in pinned
    upgraded = engine.run("start_container.sh", *deployed_v1.deploy_args(engine, "v2"))
    assert upgraded.returncode == ScriptExit.OK, upgraded.stdout + upgraded.stderr

    args = deployed_v1.deploy_args(engine, "v2")
    args[args.index("--image") + 1] = pinned
    result = engine.run("start_container.sh", *args)

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(deployed_v1.port) == (200, "berth-test v1")
    assert f"berth-digest: {pinned}" in result.stdout.splitlines()


def failing_docker(tmp_path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}


@pytest.mark.parametrize("image", ["repo/app:latest", "repo/app", "registry.example:5000/team/app",
                                   "registry.example:5000/team/app:latest"])
def test_a_mutable_image_is_refused_before_anything_runs(tmp_path, image: str) -> None:
    result = run_script("start_container.sh", "--image", image, "--name", "web", env=failing_docker(tmp_path))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert "--allow-mutable-tags" in result.stderr


@pytest.mark.parametrize("image", ["repo/app:1.2.3", "registry.example:5000/app:2024-09-12",
                                   "repo/app@sha256:" + "ab" * 32, "repo/app:latest@sha256:" + "ab" * 32])
def test_an_immutable_image_passes_the_check(tmp_path, image: str) -> None:
    result = run_script("start_container.sh", "--image", image, "--name", "web", env=failing_docker(tmp_path))

    assert result.returncode == ScriptExit.DOCKER_UNAVAILABLE, result.stdout + result.stderr


def test_mutable_tags_are_allowed_when_asked(tmp_path) -> None:
    env = failing_docker(tmp_path)
    config = tmp_path / "deploy.env"
    config.write_text("IMAGE=repo/app:latest\nCONTAINER_NAME=web\nALLOW_MUTABLE_TAGS=true\n")

    by_flag = run_script("start_container.sh", "--image", "repo/app", "--name", "web", "--allow-mutable-tags", env=env)
    by_file = run_script("start_container.sh", "--config", str(config), env=env)

    assert by_flag.returncode == by_file.returncode == ScriptExit.DOCKER_UNAVAILABLE, by_file.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "web-berth-previous"], "ends like the containers berth names itself"),
    (["--name", "web-berth-next"], "ends like the containers berth names itself"),
    (["--name", "web-berth-proxy"], "ends like the containers berth names itself"),
    (["--port", "80:8080", "--health-port", "8080"], "is not the host side of a TCP --port mapping"),
    (["--port", "53:53/udp", "--health-port", "53"], "is not the host side of a TCP --port mapping"),
    (["--health-port", "80"], "is not the host side of a TCP --port mapping"),
    (["--drain-timeout", "soon"], "--drain-timeout 'soon' is not a number of seconds"),
    (["--proxy-image", "haproxy:2.8"], "must be a reference pinned by digest"),
    (["--allow-mutable-tags", "--allow-mutable-tags", "--bogus"], "unknown argument: --bogus"),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, args: list[str], message: str) -> None:
    base = {"--image": "repo/app:1", "--name": "web"}
    for flag in ("--image", "--name"):
        if flag in args:
            base.pop(flag)
    argv = [arg for pair in base.items() for arg in pair] + args

    result = run_script("start_container.sh", *argv, env=failing_docker(tmp_path))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert "berth-error: 2 USAGE" in result.stdout
    assert message in result.stderr
