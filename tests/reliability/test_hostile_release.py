"""The hostile corpus (tests/unit/test_command.py) in the release task's command: refused at the edge (NUL, an empty
program, too many or too long arguments), or inert all the way. The script the release task sends (start_container.sh
--one-off, after install_docker.sh) is run under `sh` with a stand-in `docker` that records its last call's argv: every
payload must arrive as one argument, verbatim, after the image, and nothing may run."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain import transitions
from chalicelib.domain.container_commands import exec_commands
from chalicelib.domain.deployment import Deployment, Revision
from chalicelib.domain.release import release_run
from chalicelib.domain.spec import TargetSpec, describe_validation_error
from chalicelib.wiring import instance_scripts
from tests.unit.conftest import EXAMPLE_SPEC
from tests.unit.test_command import INJECTIONS, LINE_BREAKS, ODDITIES, hostile

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
PINNED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "ab" * 32


def run_once(tmp_path: Path, lines: list[str]) -> tuple[int, list[str]]:
    """Run the script under sh with a `docker` that records its one call's argv, each argument NUL-terminated (so an
    argument that is empty or all newlines reads back as itself); the marker file must not appear."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$RECORD\"\n")
    (bin_dir / "docker").chmod(0o755)
    script = tmp_path / "script.sh"
    script.write_text("\n".join(lines) + "\n")
    record = tmp_path / "argv.bin"
    result = subprocess.run(["sh", str(script)], env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                                      "RECORD": str(record)},
                            capture_output=True, timeout=60, cwd=tmp_path)
    assert not (tmp_path / "pwned").exists(), "a value was evaluated by the shell"
    return result.returncode, record.read_bytes().decode().split("\0")[:-1]


def spec_with(release: Any) -> TargetSpec:
    return TargetSpec.model_validate({**{k: v for k, v in EXAMPLE_SPEC.items() if k != "image"}, "release": release})


def release_script(spec: TargetSpec) -> list[str]:
    """The lines the release task sends for `spec`, built as the service builds them."""
    deployment = Deployment(deployment_id="d-1", target=spec.target, spec=spec,
                            revision=Revision(image=PINNED.split("@")[0] + ":1", digest="sha256:" + "ab" * 32),
                            trigger="pipeline", caller="alice", created_at=T0, updated_at=T0)
    return exec_commands(release_run(transitions.release_started(deployment, "i-1", "release-d-1", T0)),
                         instance_scripts(), install_docker=True)


@pytest.mark.parametrize("template", [p for p in INJECTIONS + ODDITIES + LINE_BREAKS if "\x00" not in p])
def test_hostile_release_arguments_arrive_verbatim_and_never_run(template: str, tmp_path: Path) -> None:
    value = hostile(template, tmp_path / "pwned")
    (tmp_path / "decoy-file-for-globs").write_text("")
    spec = spec_with({"command": ["sh", "-c", value, value], "timeout_seconds": 60})
    code, argv = run_once(tmp_path, release_script(spec))
    assert code == 0
    assert argv[:2] == ["run", "--rm"] and argv[-5:] == [PINNED, "sh", "-c", value, value]
    assert "--privileged" not in argv


def test_a_hostile_program_name_is_an_argument_too(tmp_path: Path) -> None:
    value = hostile("$(touch {m})", tmp_path / "pwned")
    code, argv = run_once(tmp_path, release_script(spec_with({"command": [value]})))
    assert code == 0 and argv[-2:] == [PINNED, value]


@pytest.mark.parametrize("release, problem", [
    ({"command": ["migrate\x00touch /tmp/x"]}, "NUL"),
    ({"command": []}, "at least 1"),
    ({"command": [""]}, "may not be empty"),
    ({"command": ["x"] * 65}, "at most 64"),
    ({"command": ["x" * 4097]}, "at most 4096"),
    ({"command": ["x" * 4000] * 5}, "bytes in the SSM command"),
    ({"command": ["migrate"], "timeout_seconds": 29}, "greater than or equal to 30"),
    ({"command": ["migrate"], "timeout_seconds": 3601}, "less than or equal to 3600"),
    ({"command": ["migrate"], "timeout_seconds": "600; id"}, "integer"),
    ({"command": "bin/rails db:migrate"}, "list"),
    ({"command": ["migrate"], "shell": True}, "unknown key"),
    ({"command": [["nested"]]}, "string"),
])
def test_a_bad_release_is_refused_naming_the_field(release: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        spec_with(release)
    message = describe_validation_error(refused.value)
    assert "release" in message and problem in message, message


def test_a_release_task_with_codedeploy_is_refused_naming_release() -> None:
    with pytest.raises(ValidationError) as refused:
        TargetSpec.model_validate({**{k: v for k, v in EXAMPLE_SPEC.items() if k != "image"},
                                   "release": {"command": ["migrate"]},
                                   "codedeploy": {"application": "web", "deployment_group": "prod"}})
    message = describe_validation_error(refused.value)
    assert "release: a target deployed through CodeDeploy runs its appspec's hooks" in message, message


def test_a_stored_spec_with_a_release_reads_back_and_one_without_dumps_as_before() -> None:
    from chalicelib.domain.spec import STORED

    spec = spec_with({"command": ["bin/rails", "db:migrate"]})
    assert spec.release is not None and spec.release.timeout_seconds == 600
    assert TargetSpec.model_validate(spec.model_dump(), context=STORED) == spec
    plain = TargetSpec.model_validate({k: v for k, v in EXAMPLE_SPEC.items() if k != "image"})
    assert "release" not in plain.model_dump()
