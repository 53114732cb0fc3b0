"""The hostile corpus (tests/unit/test_command.py) in every run option, the image checks and the load balancer: refused
at the edge, or inert all the way.

A field with a grammar (user, volumes, memory, network, restart, log options, ulimits, extra hosts, label keys...)
refuses every payload. A field of free text (command, entrypoint, health_check.command, label values) accepts
them, and then the payload must arrive as one argument: the SSM wrapper that berth builds runs the real
install_docker.sh and start_container.sh under `sh`, with a stand-in `docker` that records the argv of `docker run`
NUL-separated. The value must be there verbatim, in its `--option=value` form or after the image; nothing may run
(the payloads touch a marker file); and `--privileged` appears only when the spec says so.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.command import SHIPPED_SCRIPTS, DeployCommand, build_shell_commands, start_container_args
from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.spec import TargetSpec, parse_pipeline_parameters
from chalicelib.domain.spec.run_options import RUN_OPTION_FIELDS
from tests.unit.conftest import EXAMPLE_SPEC
from tests.unit.test_command import INJECTIONS, LINE_BREAKS, ODDITIES, hostile, run_recorded

REPO = Path(__file__).resolve().parents[2]
IMAGE = "registry.example.com/web:1"
# Run options that have their own grammar; each receives "GOOD" + payload (or payload alone where the value is the
# whole thing), and must refuse it.
SMUGGLED = ["--privileged", " --privileged", "-v /:/host", "--volume=/var/run/docker.sock:/s", "-it", "--",
            "\u202e--privileged", "é ✓ 😀", "\u00a0", "x" * 4096, "{{.Name}}", "${PWD}"]
PAYLOADS = INJECTIONS + LINE_BREAKS + SMUGGLED


def _container(field: str, make: Callable[[str], Any]) -> Callable[[dict[str, Any], str], None]:
    def put(spec: dict[str, Any], value: str) -> None:
        spec["container"][field] = make(value)
    return put


GRAMMAR_FIELDS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "user": _container("user", lambda v: "app" + v),
    "user-leading": _container("user", lambda v: v),
    "workdir": _container("workdir", lambda v: "/srv/" + v),
    "volume-source": _container("volumes", lambda v: [v + ":/data"]),
    "volume-target": _container("volumes", lambda v: ["/srv/data:" + v]),
    "volume-mode": _container("volumes", lambda v: ["/srv/data:/data:ro" + v]),
    "memory": _container("memory", lambda v: "512m" + v),
    "memory-reservation": _container("memory_reservation", lambda v: v + "256m"),
    "log-driver": _container("log", lambda v: {"driver": "json-file" + v}),
    "log-option-key": _container("log", lambda v: {"driver": "json-file", "options": {"max-size" + v: "1m"}}),
    "log-option-value": _container("log", lambda v: {"driver": "awslogs", "options": {"awslogs-group": "g" + v}}),
    "label-key": _container("labels", lambda v: {"team" + v: "web"}),
    "network": _container("network", lambda v: "appnet" + v),
    "network-leading": _container("network", lambda v: v),
    "restart": _container("restart", lambda v: "on-failure" + v),
    "ulimit-name": _container("ulimits", lambda v: {"nofile" + v: {"soft": 1, "hard": 2}}),
    "extra-host-name": _container("extra_hosts", lambda v: {"db" + v: "10.0.0.5"}),
    "extra-host-address": _container("extra_hosts", lambda v: {"db": "10.0.0.5" + v}),
    "device": _container("devices", lambda v: ["/dev/fuse" + v]),
    "cap-add": _container("cap_add", lambda v: ["NET_ADMIN" + v]),
    "pid": _container("pid", lambda v: "host" + v),
}
GRAMMAR_CASES = [pytest.param(field, payload, id=f"{field}-{index}")
                 for field in GRAMMAR_FIELDS for index, payload in enumerate(PAYLOADS)]
GATED = ("device", "cap-add", "pid")


def base_spec() -> dict[str, Any]:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    spec["image"] = IMAGE
    return spec


@pytest.mark.parametrize(("field", "template"), GRAMMAR_CASES)
def test_a_hostile_value_in_a_field_with_a_grammar_is_refused_or_inert(field: str, template: str,
                                                                        tmp_path: Path) -> None:
    """Most are refused; a few are legal in the grammar (`appnet--privileged` names a network) and must then reach
    `docker run` inside their own `--option=value` word."""
    marker = tmp_path / "pwned"
    value = hostile(template, marker)
    spec = base_spec()
    if field in GATED:
        spec["container"]["privileged"] = True  # the grammar refuses it, not the privileged gate
    GRAMMAR_FIELDS[field](spec, value)
    try:
        parsed = parse_pipeline_parameters(json.dumps(spec))
    except InvalidRevision:
        return
    assert isinstance(parsed, TargetSpec)
    if field != "workdir":  # a path may hold any printable character
        assert not any(ch in value for ch in "$`;|&<>\n\r\x00'\" "), f"{field} accepted {value!r}"

    result, argv = run_for_real(parsed, tmp_path)

    assert b"berth-error: 30 START_FAILED" in result.stdout, result.stdout + result.stderr
    assert not marker.exists()
    before_image = argv[:argv.index(IMAGE)]
    assert any(value in word for word in before_image if word.startswith("--") and "=" in word)
    assert field in GATED or "--privileged" not in before_image


def test_the_grown_corpus_covers_every_run_option() -> None:
    free_text = {"command", "entrypoint", "labels"}  # values; label keys have a grammar
    typed = {"read_only", "init", "privileged", "cpus", "stop_timeout_seconds"}
    with_grammar = {"user", "workdir", "volumes", "memory", "memory_reservation", "log", "network", "restart",
                    "ulimits", "extra_hosts", "devices", "cap_add", "pid"}
    assert set(RUN_OPTION_FIELDS) == free_text | typed | with_grammar, "a new run option needs its hostile cases"
    assert len(GRAMMAR_CASES) >= 500


@pytest.mark.parametrize("value", ["0.5x", "1e3", "$(id)", "--privileged", "-1 --privileged", "é"])
def test_numbers_and_switches_refuse_anything_but_their_type(value: str) -> None:
    for field in ("cpus", "stop_timeout_seconds", "read_only", "init", "privileged"):
        spec = base_spec()
        spec["container"][field] = value
        with pytest.raises(InvalidRevision):
            parse_pipeline_parameters(json.dumps(spec))


# ------------------------------------------------------------------------------------------- free text, end to end

FREE_TEXT = INJECTIONS + ODDITIES + SMUGGLED + ["\ntouch {m}", "x\n", "\r\n"]
DOCKER_STUB = """#!/bin/sh
case "$1" in
    info | pull | network) exit 0 ;;
    image)
        case "$*" in *Architecture*) exit 0 ;; esac     # no architecture to compare: the check lets it through
        echo sha256:0123456789abcdef; exit 0 ;;
    run) printf '%s\\0' "$@" > "$BERTH_RUN_RECORD"; exit 1 ;;
    *) exit 1 ;;
esac
"""


def run_for_real(spec: TargetSpec, work: Path) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
    """The SSM wrapper with the real scripts, a stand-in docker that records `docker run`'s argv; (result, argv)."""
    scripts = {name: (REPO / "scripts" / name).read_text() for name in SHIPPED_SCRIPTS}
    command = DeployCommand("d-hostile", spec.image_ref(), spec.container, spec.health_check)  # type: ignore[arg-type]
    wrapper = work / "wrapper.sh"
    wrapper.write_text("\n".join(build_shell_commands(command, scripts)) + "\n")
    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    record = work / "run.bin"
    env = {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(work),
           "BERTH_RUN_RECORD": str(record), "BERTH_LOCK_DIR": str(work), "BERTH_STATE_DIR": str(work / "state")}
    result = subprocess.run(["sh", str(wrapper)], cwd=work, env=env, capture_output=True, timeout=60, check=False)
    argv = record.read_bytes().decode().split("\0")[:-1] if record.exists() else []
    return result, argv


def chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[start:start + size] for start in range(0, len(values), size)]


@pytest.mark.parametrize("chunk", range(len(chunks(FREE_TEXT, 40))))
def test_hostile_command_arguments_reach_docker_run_as_one_argument_each(chunk: int, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    values = [hostile(template, marker) for template in chunks(FREE_TEXT, 40)[chunk]]
    spec = base_spec()
    spec["container"].update({"entrypoint": ["/bin/app", *values[:20]], "command": values[20:] or ["x"]})
    parsed = parse_pipeline_parameters(json.dumps(spec))
    assert isinstance(parsed, TargetSpec)
    (tmp_path / "decoy-for-globs").write_text("")

    result, argv = run_for_real(parsed, tmp_path)

    assert b"berth-error: 30 START_FAILED" in result.stdout, result.stdout + result.stderr
    assert not marker.exists()
    image_at = argv.index(IMAGE)
    assert "--entrypoint=/bin/app" in argv[:image_at]
    assert argv[image_at + 1:] == [*values[:20], *(values[20:] or ["x"])]
    assert "--privileged" not in argv[:image_at]


@pytest.mark.parametrize("chunk", range(len(chunks(FREE_TEXT, 60))))
def test_hostile_label_values_reach_docker_run_whole_or_are_refused(chunk: int, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    values = [hostile(template, marker) for template in chunks(FREE_TEXT, 60)[chunk]]
    accepted: dict[str, str] = {}
    for index, value in enumerate(values):
        spec = base_spec()
        spec["container"]["labels"] = {f"hostile.{index}": value}
        try:
            parse_pipeline_parameters(json.dumps(spec))
        except InvalidRevision:
            assert any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or len(value) > 1024, repr(value)
            continue
        accepted[f"hostile.{index}"] = value
    spec = base_spec()
    spec["container"]["labels"] = accepted
    parsed = parse_pipeline_parameters(json.dumps(spec))
    assert isinstance(parsed, TargetSpec)

    result, argv = run_for_real(parsed, tmp_path)

    assert b"berth-error: 30 START_FAILED" in result.stdout, result.stdout + result.stderr
    assert not marker.exists()
    for key, value in accepted.items():
        assert f"--label={key}={value}" in argv
    assert "--privileged" not in argv[:argv.index(IMAGE)]


@pytest.mark.parametrize("template", FREE_TEXT)
def test_hostile_health_command_arguments_reach_the_script_verbatim(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = hostile(template, marker)
    spec = base_spec()
    spec["health_check"]["command"] = ["/bin/check", value]
    try:
        parsed = parse_pipeline_parameters(json.dumps(spec))
    except InvalidRevision as refused:
        assert "the health command takes" in refused.message, refused.message
        return
    assert isinstance(parsed, TargetSpec)
    command = DeployCommand("d-1", parsed.image_ref(), parsed.container, parsed.health_check)  # type: ignore[arg-type]

    result, recorded = run_recorded(command, tmp_path)

    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert recorded == start_container_args(command)
    assert ["--health-cmd", "/bin/check", "--health-cmd", value] == recorded[recorded.index("--health-cmd"):][:4]


def test_privileged_reaches_docker_run_only_when_the_spec_says_so(tmp_path: Path) -> None:
    spec = base_spec()
    spec["container"].update({"privileged": True, "cap_add": ["NET_ADMIN"], "volumes": ["/var/run/docker.sock:/s"]})
    parsed = parse_pipeline_parameters(json.dumps(spec))
    assert isinstance(parsed, TargetSpec)

    _, argv = run_for_real(parsed, tmp_path)

    assert {"--privileged", "--cap-add=NET_ADMIN", "--volume=/var/run/docker.sock:/s"} <= set(argv)


# ------------------------------------------------------- the image checks' and the load balancer's fields, at the edge

TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
CHECK_FIELDS: dict[str, tuple[str, Callable[[dict[str, Any], str], None]]] = {
    "keep-images": ("container.keep_images", _container("keep_images", lambda v: "3" + v)),
    "keep-images-leading": ("container.keep_images", _container("keep_images", lambda v: v + "3")),
    "max-severity": ("image_policy.max_severity",
                     lambda spec, v: spec.__setitem__("image_policy", {"max_severity": "HIGH" + v})),
    "target-group": ("load_balancer.target_group_arns",
                     lambda spec, v: spec.__setitem__("load_balancer", {"target_group_arns": [TARGET_GROUP + v]})),
    "target-group-leading": ("load_balancer.target_group_arns",
                             lambda spec, v: spec.__setitem__("load_balancer", {"target_group_arns": [v]})),
}
CHECK_CASES = [pytest.param(field, payload, id=f"{field}-{index}")
               for field in CHECK_FIELDS for index, payload in enumerate(PAYLOADS)]


@pytest.mark.parametrize(("field", "template"), CHECK_CASES)
def test_a_hostile_value_in_the_image_checks_or_the_load_balancer_is_refused_naming_it(field: str, template: str,
                                                                                        tmp_path: Path) -> None:
    """None of these is free text: `keep_images` is a number, `max_severity` one of five words, a target group an
    ELBv2 ARN. A payload is refused naming the field, or (a line break around a number) read as the number alone."""
    named, put = CHECK_FIELDS[field]
    spec = base_spec()
    put(spec, hostile(template, tmp_path / "pwned"))
    try:
        parsed = parse_pipeline_parameters(json.dumps(spec))
    except InvalidRevision as exc:
        assert named in exc.message, exc.message
        return
    assert isinstance(parsed, TargetSpec)
    assert field.startswith("keep-images") and parsed.container.keep_images == 3, f"{field} accepted {template!r}"
    assert "--keep-images" in start_container_args(
        DeployCommand("d-1", parsed.image_ref(), parsed.container, parsed.health_check))  # type: ignore[arg-type]
