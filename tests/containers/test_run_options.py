"""The spec's run options reach the container: `podman inspect` shows each one, and the health command gates a swap.

The arguments come from `start_container_args` for a spec parsed at the edge, as the Lambda builds them, so what is
checked here is the whole path: spec -> SSM arguments -> start_container.sh -> docker run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.command import DeployCommand, start_container_args
from chalicelib.domain.exit_codes import ScriptExit
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.spec import TargetSpec, parse_pipeline_parameters
from tests.containers.support import SERVE_COMMAND, Engine, Target, http_get


def spec_args(engine: Engine, target: Target, tag: str, container: dict[str, Any],
              health: dict[str, Any] | None = None) -> list[str]:
    """start_container.sh's arguments for a spec with these container fields, as berth's Lambda sends them."""
    spec = parse_pipeline_parameters(json.dumps({
        "target": "web-test", "instances": {"tags": {"app": "web"}},
        "container": {"name": target.name, "ports": [f"{target.port}:8080"], **container},
        "health_check": health or {"path": "/health", "port": target.port, "timeout_seconds": 10,
                                   "interval_seconds": 1},
        "image": engine.image(tag)}))
    assert isinstance(spec, TargetSpec)
    command = DeployCommand("d-test", parse_image_ref(engine.image(tag)), spec.container, spec.health_check)
    args = start_container_args(command)
    return [*args, "--stop-timeout", "2"] if "--stop-timeout" not in args else args


@pytest.fixture
def network(engine: Engine) -> Iterator[str]:
    name = f"berth-net-{uuid.uuid4().hex[:8]}"
    yield name
    engine.podman("network", "rm", "-f", name, check=False)


@pytest.fixture
def named_volume(engine: Engine) -> Iterator[str]:
    name = f"berth-vol-{uuid.uuid4().hex[:8]}"
    yield name
    engine.podman("volume", "rm", "-f", name, check=False)


def test_every_run_option_reaches_the_container(engine: Engine, target: Target, network: str, named_volume: str,
                                                 tmp_path: Path) -> None:
    host_dir = tmp_path / "config"
    host_dir.mkdir()
    (host_dir / "app.conf").write_text("mode=test\n")
    container = {
        "entrypoint": ["/bin/sh", "-c"], "command": [SERVE_COMMAND], "user": "0:0", "workdir": "/www",
        "volumes": [f"{host_dir}:/etc/app:ro", f"{named_volume}:/cache"],
        "memory": "64m", "memory_reservation": "32m", "cpus": 0.5,
        "log": {"driver": "json-file", "options": {"max-size": "1m"}},
        "labels": {"team": "web", "com.example.tier": "front"}, "network": network,
        "restart": "on-failure:3", "stop_timeout_seconds": 2, "read_only": True, "init": True,
        # podman drops its configured default ulimits once one is given, and this sandbox cannot raise nproc past
        # them (setup_engine.sh): nproc is given at its default.
        "ulimits": {"nofile": {"soft": 1024, "hard": 4096}, "nproc": {"soft": 4096, "hard": 4096}},
        "extra_hosts": {"db.internal": "10.0.0.5"},
    }

    result = engine.run("start_container.sh", *spec_args(engine, target, "v1", container))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    facts = engine.inspect(target.name)
    assert facts is not None
    config, host = facts["Config"], facts["HostConfig"]
    mounts = {mount["Destination"]: mount for mount in facts["Mounts"]}
    assert (mounts["/etc/app"]["Source"], mounts["/etc/app"]["RW"]) == (str(host_dir), False)
    assert (mounts["/cache"]["Name"], mounts["/cache"]["RW"]) == (named_volume, True)
    assert (host["Memory"], host["MemoryReservation"]) == (64 * 1024 ** 2, 32 * 1024 ** 2)
    assert host["NanoCpus"] == 500_000_000
    assert config["User"] == "0:0"
    assert config["WorkingDir"] == "/www"
    assert config["Entrypoint"] in ("/bin/sh", ["/bin/sh"])  # podman 4.3 shows a string
    assert config["Cmd"] == ["-c", SERVE_COMMAND]
    assert {"team": "web", "com.example.tier": "front"}.items() <= config["Labels"].items()
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Init"] is True
    assert host["ReadonlyRootfs"] is True
    assert config["StopTimeout"] == 2
    assert {"Name": "RLIMIT_NOFILE", "Soft": 1024, "Hard": 4096} in host["Ulimits"]
    assert host["ExtraHosts"] == ["db.internal:10.0.0.5"]
    assert (host["LogConfig"]["Type"], host["LogConfig"]["Size"]) == ("json-file", "1MB")
    assert network in facts["NetworkSettings"]["Networks"]
    assert engine.podman("exec", target.name, "cat", "/etc/app/app.conf").stdout == "mode=test\n"


def test_a_changed_run_option_swaps_and_the_same_one_does_not(engine: Engine, target: Target) -> None:
    first = engine.run("start_container.sh", *spec_args(engine, target, "v1", {"memory": "64m"}))
    again = engine.run("start_container.sh", *spec_args(engine, target, "v1", {"memory": "64m"}))
    changed = engine.run("start_container.sh", *spec_args(engine, target, "v1", {"memory": "96m"}))

    assert first.returncode == again.returncode == changed.returncode == ScriptExit.OK, changed.stderr
    assert "berth-step: unchanged" in again.stdout
    assert "berth-step: unchanged" not in changed.stdout
    assert engine.inspect(target.name)["HostConfig"]["Memory"] == 96 * 1024 ** 2  # type: ignore[index]
    assert http_get(target.port) == (200, "berth-test v1")


def test_a_failing_health_command_keeps_the_old_container_serving(engine: Engine, deployed_v1: Target) -> None:
    target = deployed_v1
    old_id = engine.inspect(target.name)["Id"]  # type: ignore[index]
    health = {"path": "/health", "port": target.port, "timeout_seconds": 3, "interval_seconds": 1,
              "command": ["/bin/sh", "-c", "test -e /www/ready"]}

    result = engine.run("start_container.sh", *spec_args(engine, target, "v2", {}, health))

    assert result.returncode == ScriptExit.HEALTH_FAILED_RESTORED, result.stdout + result.stderr
    assert "the health command did not pass" in result.stdout
    assert http_get(target.port) == (200, "berth-test v1")
    assert engine.inspect(target.name)["Id"] == old_id  # type: ignore[index]
    assert engine.service_containers(target.name) == {target.name, target.name + "-berth-proxy"}


def test_a_passing_health_command_lets_the_swap_through(engine: Engine, deployed_v1: Target) -> None:
    target = deployed_v1
    health = {"port": target.port, "path": "/health", "timeout_seconds": 10, "interval_seconds": 1,
              "command": ["cat", "/www/health"]}

    result = engine.run("start_container.sh", *spec_args(engine, target, "v2", {}, health))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert "healthy: the health command passed" in result.stdout
    assert http_get(target.port) == (200, "berth-test v2")


def test_a_health_command_alone_checks_a_container_without_ports(engine: Engine, target: Target) -> None:
    spec = parse_pipeline_parameters(json.dumps({
        "target": "worker", "instances": {"tags": {"app": "worker"}},
        "container": {"name": target.name, "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]},
        "health_check": {"command": ["/bin/sh", "-c", "test -e /www/missing"], "timeout_seconds": 2},
        "image": engine.image("v1")}))
    assert isinstance(spec, TargetSpec)
    args = start_container_args(DeployCommand("d-1", parse_image_ref(engine.image("v1")), spec.container,
                                              spec.health_check))

    result = engine.run("start_container.sh", *args, "--stop-timeout", "1")

    assert result.returncode == ScriptExit.HEALTH_FAILED_NOT_RESTORED, result.stdout + result.stderr
    assert target.name not in engine.container_names()


def test_deploy_env_carries_the_run_options(engine: Engine, target: Target, tmp_path: Path) -> None:
    """The CodeDeploy path: the same options as deploy.env keys, one line per list item."""
    config = tmp_path / "deploy.env"
    config.write_text("\n".join([
        f"IMAGE={engine.image('v1')}", f"CONTAINER_NAME={target.name}", f"PORTS={target.port}:8080",
        f"HEALTH_PORT={target.port}", "HEALTH_PATH=/health", "HEALTH_TIMEOUT=10", "HEALTH_INTERVAL=1",
        "STOP_TIMEOUT=2", "ENTRYPOINT_ARG=/bin/sh", "ENTRYPOINT_ARG=-c", f"COMMAND_ARG={SERVE_COMMAND}",
        "MEMORY=48m", "CPUS=0.25", f"VOLUME={tmp_path}:/srv:ro", "LABEL=team=web", "LABEL=owner=ops",
        "RESTART=always", "INIT=true", "READ_ONLY=true", "ULIMIT=nofile=512:1024", "ULIMIT=nproc=4096:4096",
        "EXTRA_HOST=db:10.0.0.7",
        "HEALTH_CMD_ARG=cat", "HEALTH_CMD_ARG=/www/health", "USER=0", "WORKDIR=/www",
    ]) + "\n")

    result = engine.run("start_container.sh", "--config", str(config))

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    facts = engine.inspect(target.name)
    assert facts is not None
    assert facts["HostConfig"]["Memory"] == 48 * 1024 ** 2
    assert facts["Config"]["Cmd"] == ["-c", SERVE_COMMAND]
    assert {"team": "web", "owner": "ops"}.items() <= facts["Config"]["Labels"].items()
    assert facts["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert (facts["HostConfig"]["Init"], facts["HostConfig"]["ReadonlyRootfs"]) == (True, True)
    assert {"/srv": False} == {m["Destination"]: m["RW"] for m in facts["Mounts"]}
    assert http_get(target.port) == (200, "berth-test v1")


def test_a_volume_that_resolves_to_the_engine_socket_is_refused_on_the_host(engine: Engine, target: Target,
                                                                               tmp_path: Path) -> None:
    """A host path that looks harmless at the edge but is a symlink to the Docker socket on the instance."""
    link = tmp_path / "innocent"
    link.symlink_to("/var/run/docker.sock")

    result = engine.run("start_container.sh", *target.deploy_args(engine, "v1", "--volume", f"{link}:/sock"))

    assert result.returncode == ScriptExit.USAGE, result.stdout + result.stderr
    assert "resolves to /run/docker.sock" in result.stderr or "resolves to /var/run/docker.sock" in result.stderr
    assert target.name not in engine.container_names()


def test_validate_service_runs_the_health_command_of_deploy_env(engine: Engine, deployed_v1: Target,
                                                                 tmp_path: Path) -> None:
    """CodeDeploy's ValidateService: HEALTH_CMD_ARG lines run inside the container beside the HTTP check."""
    def validate(*command: str) -> int:
        config = tmp_path / "deploy.env"
        config.write_text(f"IMAGE=ignored:1\nCONTAINER_NAME={deployed_v1.name}\nHEALTH_PORT={deployed_v1.port}\n"
                          "HEALTH_PATH=/health\nHEALTH_TIMEOUT=2\nHEALTH_INTERVAL=1\n"
                          + "".join(f"HEALTH_CMD_ARG={arg}\n" for arg in command))
        result = engine.run("validate_service.sh", "--config", str(config))
        return result.returncode

    assert validate("cat", "/www/health") == ScriptExit.OK
    assert validate("cat", "/www/missing") == ScriptExit.HEALTH_FAILED_NOT_RESTORED


def test_host_network_swaps_stop_then_start_and_serves_on_the_host_port(engine: Engine, target: Target) -> None:
    """network host: no proxy, no published ports; the old container stops first (two cannot bind one port)."""
    serve = f"trap 'exit 0' TERM; httpd -f -v -p 127.0.0.1:{target.port} -h /www & wait"

    def deploy(tag: str) -> str:
        spec = parse_pipeline_parameters(json.dumps({
            "target": "hostnet", "instances": {"tags": {"app": "web"}},
            "container": {"name": target.name, "network": "host", "command": ["/bin/sh", "-c", serve]},
            "health_check": {"command": ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{target.port}/health"],
                             "timeout_seconds": 10, "interval_seconds": 1},
            "image": engine.image(tag)}))
        assert isinstance(spec, TargetSpec)
        args = start_container_args(DeployCommand("d-1", parse_image_ref(engine.image(tag)), spec.container,
                                                  spec.health_check))
        result = engine.run("start_container.sh", *args, "--stop-timeout", "2")
        assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
        return result.stdout

    deploy("v1")
    assert http_get(target.port) == (200, "berth-test v1")
    swapped = deploy("v2")

    assert "berth-step: stop-previous" in swapped
    assert http_get(target.port) == (200, "berth-test v2")
    assert engine.inspect(target.name)["HostConfig"]["NetworkMode"] == "host"  # type: ignore[index]
    assert engine.service_containers(target.name) == {target.name}
