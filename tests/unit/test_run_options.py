"""The container's run options at the edge: what each field accepts, the privileged gate, the size bounds, and the
arguments start_container.sh receives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.command import (
    MAX_DOCUMENT_BYTES,
    DeployCommand,
    build_shell_commands,
    start_container_args,
)
from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.spec import ContainerSpec, TargetSpec, parse_pipeline_parameters
from chalicelib.domain.spec.command_args import command_bytes, env_command_bytes, run_option_args, secret_args
from chalicelib.domain.spec.container import MAX_ENV_COMMAND_BYTES, MAX_HEALTH_COMMAND_BYTES
from chalicelib.domain.spec.run_options import MAX_RUN_OPTIONS_BYTES, RUN_OPTION_FIELDS
from chalicelib.domain.spec.target import MAX_SPEC_BYTES
from chalicelib.wiring import instance_scripts

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
FULL_CONTAINER: dict[str, Any] = {
    "name": "web", "ports": ["80:8080"], "env": {"MODE": "prod"},
    "entrypoint": ["/bin/tini", "--"], "command": ["gunicorn", "-b", "0.0.0.0:8080", "app:wsgi"],
    "user": "app:app", "workdir": "/srv/app",
    "volumes": ["/srv/data:/data", "/etc/localtime:/etc/localtime:ro", "cache:/var/cache/app"],
    "memory": "512m", "memory_reservation": "256m", "cpus": 0.5,
    "log": {"driver": "awslogs", "options": {"awslogs-group": "/berth/web", "awslogs-region": "eu-west-1",
                                             "awslogs-stream-prefix": "web"}},
    "labels": {"team": "web", "com.example.tier": "front"}, "network": "appnet", "restart": "on-failure:5",
    "stop_timeout_seconds": 30, "read_only": True, "init": True,
    "ulimits": {"nofile": {"soft": 65536, "hard": 65536}}, "extra_hosts": {"db.internal": "10.0.0.5"},
}


def spec_with(container: dict[str, Any], health: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"target": "web-prod", "instances": {"tags": {"app": "web"}},
            "container": {"name": "web", **container},
            **({"health_check": health} if health else {}), "image": "nginx:1.27"}


def parsed(container: dict[str, Any], health: dict[str, Any] | None = None) -> TargetSpec:
    spec = parse_pipeline_parameters(json.dumps(spec_with(container, health)))
    assert isinstance(spec, TargetSpec)
    return spec


def refusal(container: dict[str, Any], health: dict[str, Any] | None = None) -> str:
    with pytest.raises(InvalidRevision) as refused:
        parse_pipeline_parameters(json.dumps(spec_with(container, health)))
    return refused.value.message


def test_every_field_becomes_start_container_arguments_in_a_fixed_order() -> None:
    assert run_option_args(parsed(FULL_CONTAINER).container) == [
        "--entrypoint", "/bin/tini", "--entrypoint", "--",
        "--cmd", "gunicorn", "--cmd", "-b", "--cmd", "0.0.0.0:8080", "--cmd", "app:wsgi",
        "--user", "app:app", "--workdir", "/srv/app", "--memory", "512m", "--memory-reservation", "256m",
        "--cpus", "0.5", "--network", "appnet", "--restart", "on-failure:5",
        "--volume", "/srv/data:/data", "--volume", "/etc/localtime:/etc/localtime:ro",
        "--volume", "cache:/var/cache/app",
        "--log-driver", "awslogs", "--log-opt", "awslogs-group=/berth/web", "--log-opt", "awslogs-region=eu-west-1",
        "--log-opt", "awslogs-stream-prefix=web",
        "--label", "com.example.tier=front", "--label", "team=web",
        "--ulimit", "nofile=65536:65536", "--add-host", "db.internal:10.0.0.5",
        "--stop-timeout", "30", "--read-only", "--init",
    ]


def test_a_spec_without_run_options_sends_what_it_sent_before() -> None:
    command = DeployCommand("d-1", parse_image_ref("nginx:1.27"), ContainerSpec(name="web"), None)
    assert start_container_args(command) == ["--image", "nginx:1.27", "--name", "web"]


@pytest.mark.parametrize(("cpus", "sent"), [(0.5, "0.5"), (2, "2"), (1.25, "1.25"), (0.01, "0.01"), (16.0, "16")])
def test_cpus_are_sent_as_plain_decimals(cpus: float, sent: str) -> None:
    assert run_option_args(parsed({"cpus": cpus}).container) == ["--cpus", sent]


@pytest.mark.parametrize(("container", "says"), [
    ({"command": []}, "container.command"),
    ({"command": ["x"] * 65}, "container.command"),
    ({"command": ["x" * 4097]}, "container.command"),
    ({"command": ["a\x00b"]}, "NUL"),
    ({"entrypoint": [""]}, "may not be empty"),
    ({"user": "-u root"}, "container.user"),
    ({"user": "root;id"}, "container.user"),
    ({"workdir": "srv"}, "normal form"),
    ({"workdir": "/srv/../etc"}, "normal form"),
    ({"workdir": "/srv\n"}, "control characters"),
    ({"volumes": ["/srv/data"]}, "SOURCE:TARGET"),
    ({"volumes": ["/srv/data:/data:rw"]}, "SOURCE:TARGET"),
    ({"volumes": ["/srv/./data:/data"]}, "normal form"),
    ({"volumes": ["/srv/data:/"]}, "not /"),
    ({"volumes": ["relative/path:/data"]}, "volume name"),
    ({"volumes": ["/a:/data", "/b:/data"]}, "mounted twice"),
    ({"volumes": ["/a,b:/data"]}, "','"),
    ({"memory": "512"}, "container.memory"),
    ({"memory": "512M"}, "container.memory"),
    ({"memory": "5m"}, "minimum of 6m"),
    ({"memory": "256m", "memory_reservation": "512m"}, "may not pass memory"),
    ({"cpus": 0}, "container.cpus"),
    ({"cpus": 0.125}, "two decimals"),
    ({"cpus": "0.5"}, "is a number"),
    ({"cpus": True}, "is a number"),
    ({"log": {"driver": "syslog"}}, "container.log.driver"),
    ({"log": {"driver": "none", "options": {"max-size": "1m"}}}, "takes no option 'max-size'"),
    ({"log": {"driver": "json-file", "options": {"max-size": "lots"}}}, "max-size"),
    ({"log": {"driver": "journald", "options": {"tag": "{{.Name}}"}}}, "tag"),
    ({"labels": {"berth.service": "other"}}, "berth's own"),
    ({"labels": {"Berth.Settings": "x"}}, "berth's own"),
    ({"labels": {"-x": "y"}}, "container.labels"),
    ({"labels": {"team": "a\nb"}}, "control characters"),
    ({"network": "none"}, "network 'none'"),
    ({"network": "-x"}, "container.network"),
    ({"network": "host", "ports": ["80:80"]}, "list no ports"),
    ({"restart": "sometimes"}, "container.restart"),
    ({"restart": "on-failure:0"}, "container.restart"),
    ({"stop_timeout_seconds": 601}, "container.stop_timeout_seconds"),
    ({"ulimits": {"files": {"soft": 1, "hard": 2}}}, "not one of"),
    ({"ulimits": {"nofile": {"soft": 3, "hard": 2}}}, "soft limit"),
    ({"ulimits": {"nofile": {"soft": -1, "hard": 2}}}, "soft limit"),
    ({"extra_hosts": {"db": "10.0.0.300"}}, "not an IP address"),
    ({"extra_hosts": {"-db": "10.0.0.3"}}, "container.extra_hosts"),
    ({"pid": "container:web"}, "container.pid"),
])
def test_bad_run_options_are_refused_naming_the_field(container: dict[str, Any], says: str) -> None:
    assert says in refusal(container)


@pytest.mark.parametrize(("container", "field"), [
    ({"devices": ["/dev/fuse"]}, "devices"),
    ({"cap_add": ["NET_ADMIN"]}, "cap_add"),
    ({"pid": "host"}, "pid: host"),
    ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}, "volumes[0]"),
    ({"volumes": ["/data:/data", "/run:/host-run:ro"]}, "volumes[1]"),
    ({"volumes": ["/:/host:ro"]}, "volumes[0]"),
    ({"volumes": ["/var:/host-var"]}, "volumes[0]"),
    ({"volumes": ["/proc/sys:/p:ro"]}, "volumes[0]"),
    ({"volumes": ["/dev/sda:/disk"]}, "volumes[0]"),
    ({"volumes": ["/etc:/host-etc"]}, "volumes[0]"),
    ({"volumes": ["/var/lib/berth/proxy:/p"]}, "volumes[0]"),
    ({"volumes": ["/var/lib/docker:/d:ro"]}, "volumes[0]"),
])
def test_what_widens_the_container_into_its_host_needs_privileged(container: dict[str, Any], field: str) -> None:
    message = refusal(container)
    assert f"container: {field}" in message and '"privileged": true' in message

    allowed = parsed({**container, "privileged": True})
    assert allowed.container.privileged
    assert "--privileged" in run_option_args(allowed.container)


@pytest.mark.parametrize("volume", ["/etc/localtime:/etc/localtime:ro", "/etc/ssl/certs:/etc/ssl/certs:ro",
                                    "/srv/run:/run", "/var/log/app:/logs", "/home/app:/home/app",
                                    "/variable:/v", "data:/var/lib/postgresql/data"])
def test_ordinary_volumes_need_nothing(volume: str) -> None:
    container = parsed({"volumes": [volume]}).container
    assert not container.privileged
    assert "--privileged" not in run_option_args(container)


def test_a_health_command_alone_is_a_health_check() -> None:
    spec = parsed({}, {"command": ["pg_isready", "-U", "app"], "timeout_seconds": 30})
    command = DeployCommand("d-1", parse_image_ref("nginx:1.27"), spec.container, spec.health_check)
    assert start_container_args(command)[4:] == [
        "--health-cmd", "pg_isready", "--health-cmd", "-U", "--health-cmd", "app",
        "--health-timeout", "30", "--health-interval", "2"]


def test_a_health_check_with_a_port_and_a_command_sends_both() -> None:
    spec = parsed({"ports": ["80:8080"]}, {"port": 80, "path": "/health", "command": ["test", "-e", "/ready"]})
    command = DeployCommand("d-1", parse_image_ref("nginx:1.27"), spec.container, spec.health_check)
    args = start_container_args(command)
    assert args[args.index("--health-path"):] == [
        "--health-path", "/health", "--health-port", "80", "--health-cmd", "test", "--health-cmd", "-e",
        "--health-cmd", "/ready", "--health-timeout", "60", "--health-interval", "2"]


def test_a_health_command_too_large_for_the_ssm_command_is_refused() -> None:
    message = refusal({}, {"command": ["sh", "-c", "'" * 400]})
    assert f"at most {MAX_HEALTH_COMMAND_BYTES}" in message


def test_run_options_too_large_to_store_are_refused_naming_their_size() -> None:
    message = refusal({"command": ["x" * 4000] * 4})
    assert f"at most {MAX_RUN_OPTIONS_BYTES}" in message and "run options take" in message


def test_env_and_run_options_share_the_commands_budget() -> None:
    env = {f"V{n}": "v" * 3000 for n in range(9)}  # about 27 KB in the command
    parsed({"env": env})
    message = refusal({"env": env, "command": ["'" * 1000, "'" * 1000]})
    assert f"at most {MAX_ENV_COMMAND_BYTES}" in message and "env (" in message and "run options (" in message


def test_stored_specs_are_read_back_whatever_the_size_rules() -> None:
    assert ContainerSpec.model_validate({"name": "web", "command": ["x" * 4000] * 4},
                                        context={"berth_stored": True}).command == ["x" * 4000] * 4


def largest_spec() -> TargetSpec:
    """Every field at the limit berth accepts it at, in characters that grow most in the SSM command: the run options
    as large as their own bound lets them, and env filling the rest of the budget it shares with them."""
    container: dict[str, Any] = {
        "name": "c" * 128, "ports": [f"{60000 + n}:{60000 + n}/udp" for n in range(31)] + ["1:65535/tcp"],
        "command": ["'" * 300] * 4, "entrypoint": ["/" + "e" * 300], "user": "u" * 32 + ":" + "g" * 32,
        "workdir": "/" + "w" * 1023, "volumes": [f"/{'s' * 200}{n:02d}:/{'t' * 200}{n:02d}:ro" for n in range(8)],
        "memory": "9999999g", "memory_reservation": "9999999g", "cpus": 1024,
        "log": {"driver": "awslogs", "options": {"awslogs-group": "g" * 512, "awslogs-region": "ap-southeast-2",
                                                 "awslogs-stream-prefix": "p" * 128, "mode": "non-blocking"}},
        "labels": {f"l{n}{'k' * 100}": "v" * 100 for n in range(8)}, "network": "n" * 63,
        "restart": "on-failure:999", "stop_timeout_seconds": 600, "read_only": True, "init": True,
        "ulimits": {"nofile": {"soft": 2 ** 62, "hard": 2 ** 62}}, "extra_hosts": {"h" * 63: "ffff::1"},
        "privileged": True, "devices": ["/dev/" + "d" * 200], "cap_add": ["CAP_" + "A" * 28], "pid": "host",
        "keep_images": 99}
    # Five secrets and the registry login, by ARNs as long as berth takes them.
    container["secrets"] = {f"S{n}{'S' * 126}": "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:"
                            + "s" * 512 + ":" + "k" * 256 + "::" for n in range(5)}
    container["registry_credentials"] = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:" + "r" * 512
    parsed = ContainerSpec.model_validate(container)
    options_bytes = command_bytes(run_option_args(parsed)) + command_bytes(secret_args(parsed))
    # Each pair takes ` --env `, its 128-character name and two quotes, then 6 bytes a character (\u0001 in JSON).
    per_env = ((MAX_ENV_COMMAND_BYTES - options_bytes) // 32 - 140) // 6
    container["env"] = {f"V{n:03d}{'N' * 124}": "\x01" * per_env for n in range(32)}
    return TargetSpec.model_validate({
        "target": "t" * 63, "instances": {"tags": {f"{k}{'k' * 127}": "v" * 128 for k in "abcde"}},
        "container": container,
        "health_check": {"path": "/" + "p" * 255, "port": 1, "timeout_seconds": 59,
                         "command": ["sh", "-c", "'" * 250]},
        "rollout": {"max_concurrency": "999999", "max_errors": "999999", "timeout_seconds": 172800},
        "codedeploy": {"application": "a" * 100, "deployment_group": "g" * 100, "hook_checks": {
            "url": "https://" + "u" * 2000, "expected_status": 599, "timeout_seconds": 60, "expect_digest": True}},
        "image": "registry.example.com:5000/" + "/".join(["r" * 60] * 3) + ":" + "t" * 128 + "@sha256:" + "0" * 64,
        "allow_mutable_tags": True})


def test_the_largest_spec_with_run_options_fits_its_item_and_ssms_64_kb() -> None:
    spec = largest_spec()
    in_command = (env_command_bytes(spec.container.env) + command_bytes(run_option_args(spec.container))
                  + command_bytes(secret_args(spec.container)))
    assert spec.container.secrets and spec.container.registry_credentials
    assert MAX_ENV_COMMAND_BYTES - 1024 < in_command <= MAX_ENV_COMMAND_BYTES
    scripts = instance_scripts()     # as SSM ships them: without their comment lines
    command = DeployCommand("d-1", spec.image_ref(), spec.container, spec.health_check)  # type: ignore[arg-type]
    document = len(json.dumps({"commands": build_shell_commands(command, scripts)}).encode())
    assert len(spec.model_dump_json().encode()) <= MAX_SPEC_BYTES
    assert document < MAX_DOCUMENT_BYTES, f"{document} bytes"


def test_the_openapi_document_describes_every_run_option() -> None:
    from app import api
    from chalicelib.api.openapi import document

    schemas = document(api.table)["components"]["schemas"]
    container = next(schema for name, schema in schemas.items() if name.startswith("ContainerSpec"))["properties"]
    assert set(RUN_OPTION_FIELDS) <= set(container)
    health = next(schema for name, schema in schemas.items() if name.startswith("HealthCheckSpec"))
    assert "command" in health["properties"] and "port" not in health.get("required", [])
    assert "\\Z" not in json.dumps(schemas)
