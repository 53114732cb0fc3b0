"""The container part of the spec: port mappings, names, env (bounds, and values never echoed) and the health check."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.spec import (
    HealthCheckSpec,
    TargetSpec,
    parse_pipeline_parameters,
)
from chalicelib.domain.spec.command_args import env_command_bytes
from chalicelib.domain.spec.container import MAX_ENV_BYTES, MAX_ENV_COMMAND_BYTES, MAX_ENV_VALUE
from chalicelib.domain.spec.target import MAX_SPEC_BYTES
from tests.unit.conftest import EXAMPLE_SPEC
from tests.unit.spec_helpers import error_of, parse

IDS = [f"i-{n:017x}" for n in range(60)]
SECRET = "hunter2-Sup3rS3cr3t-AKIAXXXXXXXXXXXX-token"



@pytest.mark.parametrize("ports", [
    [], ["80:8080"], ["1:1", "65535:65535"], ["5000:5000/tcp", "5000:5000/udp"], ["80:80", "81:80"],
])
def test_good_port_mappings(example_spec: dict[str, Any], ports: list[str]) -> None:
    del example_spec["health_check"]
    example_spec["container"]["ports"] = ports
    assert parse(example_spec).container.ports == ports


@pytest.mark.parametrize("ports", [
    ["0:5000"], ["5000:0"], ["70000:80"], ["80:70000"], ["65536:80"], ["abc"], ["5000"], ["80:80/sctp"],
    [":80"], ["80:"], ["-1:80"], ["80:80 "], ["8080:80", "8080:81"], ["8080:80/tcp", "8080:81"],
    ["8080:80/udp", "8080:81/udp"], ["123456:80"], [80], [f"{n}:{n}" for n in range(1, 34)],
    ["080:80"], ["80:080"], ["00080:80"], ["080:80", "80:80"], ["80:80/tcp", "080:81/tcp"],
])
def test_bad_port_mappings(example_spec: dict[str, Any], ports: list[Any]) -> None:
    example_spec["container"]["ports"] = ports
    assert "container.ports" in error_of(example_spec)


def test_a_port_written_with_leading_zeros_says_so(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["ports"] = ["080:80"]
    assert "leading zeros" in error_of(example_spec)


def test_one_host_port_for_tcp_and_for_udp_is_two_mappings(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["ports"] = ["53:53/udp", "53:53", "54:53/tcp"]
    example_spec["health_check"]["port"] = 53
    assert parse(example_spec).container.ports == ["53:53/udp", "53:53", "54:53/tcp"]


def test_a_port_mapping_with_a_trailing_newline_is_rejected(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["ports"] = ["5000:5000\n"]
    error_of(example_spec)


@pytest.mark.parametrize("name", ["web", "Web_1.blue-green", "a" * 128, "0a", "w-"])
def test_good_container_names(example_spec: dict[str, Any], name: str) -> None:
    example_spec["container"]["name"] = name
    assert parse(example_spec).container.name == name


@pytest.mark.parametrize("name", ["", "-web", ".web", "web app", "web/app", "a" * 129, "wéb", "web\n", "w", "0"])
def test_bad_container_names(example_spec: dict[str, Any], name: str) -> None:
    example_spec["container"]["name"] = name
    assert "container.name" in error_of(example_spec)


@pytest.mark.parametrize("name", ["web-berth-previous", "web-berth-next", "web-berth-proxy", "web-berth-proxy-next",
                                  "Web_1.blue-berth-previous"])
def test_names_berth_gives_its_own_containers_are_refused(example_spec: dict[str, Any], name: str) -> None:
    # Deploying "web" once force-removed another target's "web-berth-previous" as a stale backup.
    example_spec["container"]["name"] = name
    assert "container.name: container names may not end in '-berth-" in error_of(example_spec)


@pytest.mark.parametrize("name", ["berth-previous", "web-berth-previous2", "web-berth", "web-berth-nextdoor"])
def test_names_that_only_resemble_berths_own_are_fine(example_spec: dict[str, Any], name: str) -> None:
    example_spec["container"]["name"] = name
    assert parse(example_spec).container.name == name


@pytest.mark.parametrize(("ports", "port"), [(["80:5000"], 5000), (["5000:5000/udp"], 5000), ([], 5000),
                                             (["5001:5000"], 5000)])
def test_the_health_check_must_reach_the_container_through_a_tcp_mapping(
    example_spec: dict[str, Any], ports: list[str], port: int
) -> None:
    example_spec["container"]["ports"] = ports
    example_spec["health_check"]["port"] = port
    assert f"health_check.port {port} must be the host side of a TCP mapping" in error_of(example_spec)


@pytest.mark.parametrize("ports", [["80:5000"], ["53:53/udp", "80:5000/tcp"]])
def test_a_health_check_on_a_tcp_host_port_is_fine(example_spec: dict[str, Any], ports: list[str]) -> None:
    example_spec["container"]["ports"] = ports
    example_spec["health_check"]["port"] = 80
    assert parse(example_spec).health_check == HealthCheckSpec(path="/health", port=80, timeout_seconds=60)


def test_env_names_and_values_that_are_accepted(example_spec: dict[str, Any]) -> None:
    env = {"_": "", "A1": "x" * MAX_ENV_VALUE, "lower_case": "spaces and 'quotes' \"double\" $(not run) \t tab",
           "UNICODE": "é ✓ 😀"}
    example_spec["container"]["env"] = env
    assert parse(example_spec).container.env == env


@pytest.mark.parametrize("name", ["MY-VAR", "1VAR", "", "A B", "A=B", "É", "A" * 129, "$HOME"])
def test_bad_env_names(example_spec: dict[str, Any], name: str) -> None:
    example_spec["container"]["env"] = {name: "value"}
    assert "container.env" in error_of(example_spec)


@pytest.mark.parametrize("value", ["line1\nline2", "trailing\n", "\rcarriage", "nul\x00", "x" * (MAX_ENV_VALUE + 1)])
def test_bad_env_values(example_spec: dict[str, Any], value: str) -> None:
    example_spec["container"]["env"] = {"GOOD_NAME": value}
    assert "container.env" in error_of(example_spec)


def test_an_env_too_large_to_store_is_refused_naming_its_size(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["env"] = {f"V{n}": "x" * MAX_ENV_VALUE for n in range(128)}
    message = error_of(example_spec)
    size = len(json.dumps(example_spec["container"]["env"], separators=(",", ":")))
    assert "container.env" in message and f"{size} bytes" in message and f"at most {MAX_ENV_BYTES}" in message


def test_an_env_that_would_not_fit_the_ssm_command_is_refused_naming_its_size(example_spec: dict[str, Any]) -> None:
    # Quotes cost five bytes each once shell-quoted: well under the storage budget, far over the command's.
    example_spec["container"]["env"] = {f"V{n}": "'" * 1000 for n in range(20)}
    message = error_of(example_spec)
    size = env_command_bytes(example_spec["container"]["env"])
    assert size > MAX_ENV_COMMAND_BYTES
    assert "container.env" in message and f"{size} bytes in the SSM command" in message


def test_the_largest_spec_berth_accepts_fits_its_documented_bound() -> None:
    """Every field at its limit, env filled to its byte budget with characters JSON escapes: still under
    MAX_SPEC_BYTES, which leaves the rest of a 400 KB DynamoDB item to the deployment record."""
    per_value = (MAX_ENV_COMMAND_BYTES // 128 - 160) // 6
    spec = TargetSpec.model_validate({
        "target": "t" * 63, "instances": {"tags": {f"{k}{'k' * 127}": "v" * 128 for k in "abcde"}},
        "container": {"name": "c" * 128, "ports": [f"{60000 + n}:{60000 + n}/udp" for n in range(31)] + ["1:65535/tcp"],
                      "env": {f"V{n:03d}{'N' * 124}": "\x01" * per_value for n in range(128)}},
        "health_check": {"path": "/" + "p" * 255, "port": 1, "timeout_seconds": 59},
        "rollout": {"max_concurrency": "999999", "max_errors": "999999", "timeout_seconds": 172800},
        "retry": {"max_attempts": 10, "base_seconds": 3600, "cap_seconds": 86400},
        "codedeploy": {"application": "a" * 100, "deployment_group": "g" * 100, "hook_checks": {
            "url": "https://" + "u" * 2000, "expected_status": 599, "timeout_seconds": 60, "expect_digest": True}},
        "image": "registry.example.com:5000/" + "/".join(["r" * 60] * 3) + ":" + "t" * 128 + "@sha256:" + "0" * 64,
        "allow_mutable_tags": True})
    assert len(spec.model_dump_json().encode()) <= MAX_SPEC_BYTES


def test_too_many_env_vars(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["env"] = {f"V{n}": "x" for n in range(129)}
    assert "container.env" in error_of(example_spec)


@pytest.mark.parametrize("env", [
    {"DB_PASSWORD": SECRET, "BAD-NAME": "x"},
    {"DB_PASSWORD": SECRET + "\nsecond line"},
    {"DB_PASSWORD": SECRET + "\x00"},
    {"DB_PASSWORD": SECRET * 200},
    {"DB_PASSWORD": SECRET, "NUMBER": 12345},
    {"DB_PASSWORD": SECRET, "LIST": [SECRET]},
])
@pytest.mark.parametrize("elsewhere", ["nothing", "port", "unknown-key", "image", "health", "instances", "types"])
def test_env_values_never_appear_in_error_messages(example_spec: dict[str, Any], env: dict[str, Any],
                                                   elsewhere: str) -> None:
    example_spec["container"]["env"] = env
    if elsewhere == "port":
        example_spec["container"]["ports"] = ["99999:1"]
    elif elsewhere == "unknown-key":
        example_spec["container"]["secrets"] = {"x": 1}
    elif elsewhere == "image":
        example_spec["image"] = "Not A Valid Image"
    elif elsewhere == "health":
        example_spec["health_check"] = {"path": "nope", "port": 0}
    elif elsewhere == "instances":
        example_spec["instances"] = {"tags": {}, "ids": []}
    elif elsewhere == "types":
        example_spec["rollout"] = [1, 2]
        example_spec["container"]["name"] = 7
    message = error_of(example_spec)
    assert SECRET not in message
    assert "Sup3rS3cr3t" not in message
    assert "hunter2" not in message


def test_a_secret_env_value_is_not_in_the_message_of_an_otherwise_valid_spec_with_a_bad_value() -> None:
    raw = json.dumps({**EXAMPLE_SPEC, "container": {"name": "web", "env": {"TOKEN": f"{SECRET}\n"}}})
    with pytest.raises(InvalidRevision) as caught:
        parse_pipeline_parameters(raw)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


# ------------------------------------------------------------------------------------------------ health check

@pytest.mark.parametrize("path", ["/", "/health", "/health?verbose=1&x=%20", "/a/b-c_d.e~f!$&'()*+,;=:@"])
def test_good_health_paths(example_spec: dict[str, Any], path: str) -> None:
    example_spec["health_check"]["path"] = path
    assert parse(example_spec).health_check.path == path


@pytest.mark.parametrize("path", ["health", "", "http://x/health", "/he alth", "/health#frag", "/\u00e9",
                                  "/a\"b", "/a<b>", "/`x`", "/a\\b", "/" + "a" * 256])
def test_bad_health_paths(example_spec: dict[str, Any], path: str) -> None:
    example_spec["health_check"]["path"] = path
    assert "health_check.path" in error_of(example_spec)


def test_a_health_path_with_a_trailing_newline_is_rejected(example_spec: dict[str, Any]) -> None:
    example_spec["health_check"]["path"] = "/health\n"
    error_of(example_spec)


@pytest.mark.parametrize(("field", "value"), [
    ("port", 0), ("port", 65536), ("port", "abc"), ("timeout_seconds", 0), ("timeout_seconds", 3601),
    ("interval_seconds", 0), ("interval_seconds", 61),
])
def test_bad_health_numbers(example_spec: dict[str, Any], field: str, value: Any) -> None:
    example_spec["health_check"][field] = value
    assert f"health_check.{field}" in error_of(example_spec)


@pytest.mark.parametrize(("health", "rollout"), [(600, 300), (3600, 3600), (60, 60), (3600, None)])
def test_a_health_check_must_end_before_the_command_times_out(example_spec: dict[str, Any], health: int,
                                                              rollout: int | None) -> None:
    example_spec["health_check"]["timeout_seconds"] = health
    if rollout is None:
        del example_spec["rollout"]
        rollout = 3600
    else:
        example_spec["rollout"]["timeout_seconds"] = rollout
    message = error_of(example_spec)
    assert f"health_check.timeout_seconds ({health})" in message and f"rollout.timeout_seconds ({rollout})" in message


def test_a_health_check_shorter_than_the_command_timeout_is_accepted(example_spec: dict[str, Any]) -> None:
    example_spec["health_check"]["timeout_seconds"] = 3599
    assert parse(example_spec).health_check.timeout_seconds == 3599


def test_health_check_needs_a_port_or_a_command(example_spec: dict[str, Any]) -> None:
    example_spec["health_check"] = {"path": "/health"}
    assert "health_check: give a port (an HTTP check), a command" in error_of(example_spec)
