"""The hostile corpus (tests/unit/test_command.py) in container.secrets and registry_credentials, and in the secrets'
values themselves.

A reference is an ARN with a strict grammar: every payload, before, after or instead of a good ARN, and in a secret's
name, is refused at the edge, naming the field. A value is whatever the secret holds: the SSM wrapper that berth builds
runs the real scripts under `sh`, with a stand-in `aws` that serves the hostile values and a stand-in `docker` that
records `docker run`'s argv and the env file it is given. Each value must reach that file verbatim, one line, and
nowhere else: not in the argv, not in the output; nothing may run (the payloads touch a marker file), and no file is
left behind. A value with a line break cannot be carried by an env file and fails the deploy naming the secret.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.command import SHIPPED_SCRIPTS, DeployCommand, build_shell_commands
from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.spec import TargetSpec, parse_pipeline_parameters
from tests.reliability.test_hostile_run_options import SMUGGLED
from tests.unit.conftest import EXAMPLE_SPEC
from tests.unit.test_command import INJECTIONS, LINE_BREAKS, ODDITIES, hostile

REPO = Path(__file__).resolve().parents[2]
IMAGE = "registry.example.com/web:1"
SM = "arn:aws:secretsmanager:eu-west-1:123456789012:secret"
DB = f"{SM}:prod/db-AbCdEf"
PARAMETER = "arn:aws:ssm:eu-west-1:123456789012:parameter/web/api-key"
NAME_CHARACTERS = set(string.ascii_letters + string.digits + "/_+=.@-:")
PAYLOADS = INJECTIONS + LINE_BREAKS + SMUGGLED + ODDITIES + ["x" * 4096]


def base_spec() -> dict[str, Any]:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    spec["image"] = IMAGE
    return spec


def refusal(spec: dict[str, Any]) -> str:
    with pytest.raises(InvalidRevision) as refused:
        parse_pipeline_parameters(json.dumps(spec))
    return refused.value.message


def refused_or_inert(spec: dict[str, Any], field: str, arn: str) -> None:
    """Refused naming `field`; or, where the payload is legal in a secret's name (`db--privileged`), made of name
    characters alone: the script hands it to `aws` as one argument, never to docker."""
    try:
        parsed = parse_pipeline_parameters(json.dumps(spec))
    except InvalidRevision as refused:
        assert field in refused.message, refused.message
        return
    assert isinstance(parsed, TargetSpec)
    assert set(arn) <= NAME_CHARACTERS, repr(arn)
    assert arn in (parsed.container.registry_credentials, parsed.container.secrets.get("DB_PASSWORD"))


@pytest.mark.parametrize("template", PAYLOADS)
def test_a_hostile_reference_is_refused_naming_its_field(template: str, tmp_path: Path) -> None:
    value = hostile(template, tmp_path / "pwned")
    for arn in (DB + value, value + DB, value, PARAMETER + value, f"{DB}:{value}::"):
        spec = base_spec()
        spec["container"]["secrets"] = {"DB_PASSWORD": arn}
        refused_or_inert(spec, "container.secrets.DB_PASSWORD", arn)
        spec = base_spec()
        spec["container"]["registry_credentials"] = arn
        refused_or_inert(spec, "container.registry_credentials", arn)


@pytest.mark.parametrize("template", PAYLOADS)
def test_a_hostile_secret_name_is_refused(template: str, tmp_path: Path) -> None:
    value = hostile(template, tmp_path / "pwned")
    spec = base_spec()
    spec["container"]["secrets"] = {"DB" + value: DB}
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "DB" + value):  # DBEOF is a name like any other
        assert isinstance(parse_pipeline_parameters(json.dumps(spec)), TargetSpec)
        return
    assert "container.secrets" in refusal(spec)


# Serves BERTH_SECRETS_SERVED/<sha256 of the ARN>, as `--output text` prints a string (a shell: fifty of them run).
STAND_IN_AWS = """#!/bin/sh
while [ "$#" -gt 0 ]; do
    case "$1" in --secret-id | --name) key="$2" ;; esac
    shift
done
cat "$BERTH_SECRETS_SERVED/$(printf '%s' "$key" | sha256sum | cut -c 1-64)"
printf '\\n'
"""
DOCKER_STUB = """#!/bin/sh
case "$1" in
    info | pull | network) exit 0 ;;
    image)
        case "$*" in *Architecture*) exit 0 ;; esac     # no architecture to compare: the check lets it through
        echo sha256:0123456789abcdef; exit 0 ;;
    run)
        printf '%s\\0' "$@" > "$BERTH_RUN_RECORD"
        for arg in "$@"; do
            case "$arg" in --env-file=*) cp "${arg#--env-file=}" "$BERTH_ENV_FILE_RECORD" ;; esac
        done
        exit 1 ;;
    *) exit 1 ;;
esac
"""


def run_with_secrets(served: dict[str, str], spec: TargetSpec, work: Path) -> tuple[Any, list[str], bytes]:
    """The SSM wrapper with the real scripts; stand-ins for aws (serving `served`) and docker. (result, argv of
    docker run, the env file docker run was given)."""
    scripts = {name: (REPO / "scripts" / name).read_text() for name in SHIPPED_SCRIPTS}
    command = DeployCommand("d-hostile", spec.image_ref(), spec.container, spec.health_check)  # type: ignore[arg-type]
    wrapper = work / "wrapper.sh"
    wrapper.write_text("\n".join(build_shell_commands(command, scripts)) + "\n")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", DOCKER_STUB), ("aws", STAND_IN_AWS)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (work / "served").mkdir()
    for arn, value in served.items():
        (work / "served" / hashlib.sha256(arn.encode()).hexdigest()).write_bytes(value.encode())
    (work / "secrets").mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(work),
           "BERTH_RUN_RECORD": str(work / "run.bin"), "BERTH_ENV_FILE_RECORD": str(work / "env-file"),
           "BERTH_SECRETS_SERVED": str(work / "served"), "BERTH_SECRETS_DIR": str(work / "secrets"),
           "BERTH_LOCK_DIR": str(work), "BERTH_STATE_DIR": str(work / "state")}
    result = subprocess.run(["sh", str(wrapper)], cwd=work, env=env, capture_output=True, timeout=180, check=False)
    record = work / "run.bin"
    argv = record.read_bytes().decode().split("\0")[:-1] if record.exists() else []
    env_file = work / "env-file"
    return result, argv, env_file.read_bytes() if env_file.exists() else b""


VALUES = INJECTIONS + ODDITIES + SMUGGLED


def chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[start:start + size] for start in range(0, len(values), size)]


@pytest.mark.parametrize("chunk", range(len(chunks(VALUES, 50))))
def test_hostile_secret_values_reach_the_env_file_alone_and_never_run(chunk: int, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    values = [hostile(template, marker) for template in chunks(VALUES, 50)[chunk]]
    arns = [f"{SM}:hostile/{index}" if index % 2 else f"{PARAMETER}/{index}" for index in range(len(values))]
    spec = base_spec()
    spec["container"]["secrets"] = {f"S{index:02d}": arn for index, arn in enumerate(arns)}
    parsed = parse_pipeline_parameters(json.dumps(spec))
    assert isinstance(parsed, TargetSpec)

    result, argv, env_file = run_with_secrets(dict(zip(arns, values, strict=True)), parsed, tmp_path)

    assert b"berth-error: 30 START_FAILED" in result.stdout, result.stdout + result.stderr
    assert not marker.exists()
    # `$(...)` drops a value's trailing newlines, as it does every line the CLI prints.
    expected = "".join(f"S{index:02d}={value.rstrip(chr(10))}\n" for index, value in enumerate(values))
    assert env_file.decode() == expected
    env_files = [word for word in argv if word.startswith("--env-file=")]
    assert len(env_files) == 1 and not Path(env_files[0].removeprefix("--env-file=")).exists()
    assert list((tmp_path / "secrets").iterdir()) == []
    output = (result.stdout + result.stderr).decode(errors="replace")
    for value in values:
        if len(value) >= 8:
            assert value not in output and all(value not in word for word in argv), repr(value)
    assert "--privileged" not in argv[:argv.index(IMAGE)]


@pytest.mark.parametrize("value", ["line one\nline two", "\ntouch {m}", "\rtouch {m}", "x\r\n"])
def test_a_value_with_a_line_break_fails_naming_the_secret_and_runs_nothing(value: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = base_spec()
    spec["container"]["secrets"] = {"DB_PASSWORD": DB}
    parsed = parse_pipeline_parameters(json.dumps(spec))
    assert isinstance(parsed, TargetSpec)

    result, argv, _ = run_with_secrets({DB: hostile(value, marker)}, parsed, tmp_path)

    assert result.returncode == 22, result.stdout + result.stderr
    assert b"berth-error: 22 SECRET_UNREADABLE" in result.stdout
    assert b"the secret DB_PASSWORD" in result.stderr and DB.encode() in result.stderr
    output = result.stdout + result.stderr
    assert str(marker).encode() not in output and b"line one" not in output and b"line two" not in output
    assert argv == [] and not marker.exists()
    assert list((tmp_path / "secrets").iterdir()) == []
