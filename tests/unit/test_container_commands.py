"""The operators' commands: `docker logs` and a one-off run (start_container.sh --one-off, shipped as the Lambda ships
it), run here under `sh` with a stand-in `docker` that records its argv NUL-separated, so each value is seen to arrive
as one argument and no payload ever runs."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib.domain.command import MAX_DOCUMENT_BYTES, document_bytes
from chalicelib.domain.container_commands import OneOffRun, exec_commands, logs_commands, since_seconds
from chalicelib.domain.errors import InstanceUnavailable, InvalidRequest
from chalicelib.domain.exit_codes import ScriptExit
from chalicelib.domain.instance_output import (
    InvocationOutput,
    choose_instances,
    merge_log_lines,
    overall_exit_code,
)
from chalicelib.domain.spec import ContainerSpec
from chalicelib.domain.spec.container import MAX_ENV_COMMAND_BYTES
from chalicelib.wiring import instance_scripts

PINNED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "ab" * 32
# Each would run `touch "$MARK"` if any shell evaluated it.
HOSTILE = ["'; touch \"$MARK\"; '", "$(touch \"$MARK\")", "`touch \"$MARK\"`", "a\ntouch \"$MARK\"", "-rf",
           '"; touch "$MARK"; "', "\\", "*", "~", "$MARK", "|| touch \"$MARK\""]


STAND_IN_DOCKER = """#!/bin/sh
printf '%s\\0' "$@" >> "$CALLS"
printf '\\n' >> "$CALLS"
case "$1" in
    run) echo "docker ran"; echo "docker's stderr" >&2; exit "$DOCKER_EXIT" ;;
    info) exit "$DOCKER_INFO_EXIT" ;;
    login) cat >/dev/null ;;
    image) [ "$2" = inspect ] && exit "$IMAGE_MISSING" ;;
esac
exit 0
"""


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    def runs(self) -> list[list[str]]:
        return [call for call in self.calls if call[0] in ("run", "rm", "pull")]


def run_script(tmp_path: Path, lines: list[str], docker_exit: int = 0, docker_info_exit: int = 0,
               image_missing: bool = False) -> Ran:
    """Run the command's lines as SSM would (one script, under sh), with a stand-in docker that records its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    docker = bin_dir / "docker"
    docker.write_text(STAND_IN_DOCKER)
    docker.chmod(0o755)
    script = tmp_path / "script.sh"
    script.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "MARK": str(tmp_path / "pwned"), "DOCKER_EXIT": str(docker_exit), "DOCKER_INFO_EXIT": str(docker_info_exit),
           "IMAGE_MISSING": "1" if image_missing else "0", "BERTH_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    recorded = calls.read_bytes().decode() if calls.exists() else ""
    argvs = [entry.split("\0") for entry in recorded.split("\0\n") if entry]
    assert not (tmp_path / "pwned").exists(), "a value was evaluated by the shell"
    return Ran(result.returncode, result.stdout, result.stderr, argvs)


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return instance_scripts()


def container(**fields: object) -> ContainerSpec:
    return ContainerSpec.model_validate({"name": "web", **fields})


def test_logs_run_docker_logs_with_each_value_as_one_argument(tmp_path: Path) -> None:
    ran = run_script(tmp_path, logs_commands("web.api-1", "2h", 10_000))
    assert ran.code == 0 and ran.stdout == ""
    assert ran.calls == [["logs", "--timestamps", "--since", "2h", "--tail", "10000", "--", "web.api-1"]]


@pytest.mark.parametrize("since, tail", [("$(id)", 10), ("25h", 10), ("10m", 0), ("10m", 10_001), ("1d", 1)])
def test_logs_refuse_what_the_edge_refuses(since: str, tail: int) -> None:
    with pytest.raises(ValueError):
        logs_commands("web", since, tail)


@pytest.mark.parametrize("since, seconds", [("1s", 1), ("10m", 600), ("24h", 86_400), ("1440m", 86_400)])
def test_since_is_seconds_minutes_or_hours_up_to_a_day(since: str, seconds: int) -> None:
    assert since_seconds(since) == seconds


def test_a_one_off_run_gets_env_and_run_options_as_the_swap_does_and_the_command_as_given(
        tmp_path: Path, scripts: dict[str, str]) -> None:
    spec = container(ports=["80:8080"], env={"DB_URL": "postgres://u:p@db/x", "QUOTE": "it's $(here)"},
                     entrypoint=["/entry", "--verbose"], command=["serve"], volumes=["/srv:/data:ro"],
                     user="1000:1000", restart="always", init=True, read_only=True, network="backend",
                     labels={"team": "web"})
    run = OneOffRun("abc123", PINNED, spec, ("rake", "db:status", *HOSTILE), 120)

    ran = run_script(tmp_path, exec_commands(run, scripts))

    assert ran.code == 0, ran.stderr
    # The run's output alone, its stderr in order with its stdout: berth's own lines (its steps, the pull) stay out.
    assert (ran.stdout, ran.stderr) == ("docker ran\ndocker's stderr\n", "")
    assert ran.runs() == [[
        "run", "--rm", "--name", "berth-exec-abc123", "--label", "berth.exec-for=web",
        "-e", "DB_URL=postgres://u:p@db/x", "-e", "QUOTE=it's $(here)",
        "--entrypoint=/entry", "--user=1000:1000", "--network=backend", "--volume=/srv:/data:ro", "--label=team=web",
        "--read-only", "--init",
        PINNED, "--verbose", "rake", "db:status", *HOSTILE]]
    assert "network" in {call[0] for call in ran.calls}        # the spec's network exists first, as for a swap


@pytest.mark.parametrize("docker_exit", [0, 3, 124])
def test_the_script_exits_with_the_runs_code_and_removes_a_run_that_overstayed(tmp_path: Path, docker_exit: int,
                                                                               scripts: dict[str, str]) -> None:
    run = OneOffRun("abc123", PINNED, container(), ("true",), 60)
    ran = run_script(tmp_path, exec_commands(run, scripts), docker_exit)
    assert ran.code == docker_exit
    assert ran.runs()[0][:2] == ["run", "--rm"]
    if docker_exit == 124:
        assert ran.runs()[1] == ["rm", "-f", "berth-exec-abc123"] and "stopped after 60 seconds" in ran.stdout
    else:
        assert len(ran.runs()) == 1


def test_an_image_not_on_the_instance_is_pulled_first_after_the_registrys_login(tmp_path: Path,
                                                                               scripts: dict[str, str]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text("#!/bin/sh\necho \"$*\" >> \"$CALLS.aws\"\necho token\n")
    (bin_dir / "aws").chmod(0o755)
    run = OneOffRun("abc123", PINNED, container(), ("migrate",), 60)

    ran = run_script(tmp_path, exec_commands(run, scripts), image_missing=True)

    assert ran.code == 0, ran.stderr
    assert [call[0] for call in ran.calls if call[0] in ("login", "pull", "logout", "run")] == [
        "login", "pull", "run"]
    assert (tmp_path / "calls.aws").read_text() == "ecr get-login-password --region us-east-1\n"
    assert ran.stdout == "docker ran\ndocker's stderr\n"


def test_a_failure_before_the_run_says_so_on_stderr_with_berths_exit_code(tmp_path: Path,
                                                                          scripts: dict[str, str]) -> None:
    run = OneOffRun("abc123", PINNED, container(), ("true",), 60)
    ran = run_script(tmp_path, exec_commands(run, scripts), docker_info_exit=1)
    assert ran.code == ScriptExit.DOCKER_UNAVAILABLE and ran.stdout == "" and ran.runs() == []
    assert "berth-error: 10 DOCKER_UNAVAILABLE" in ran.stderr


def test_a_release_task_installs_docker_first_keeping_only_its_errors(scripts: dict[str, str]) -> None:
    run = OneOffRun("release-d-1", PINNED, container(), ("migrate",), 60)
    lines = exec_commands(run, scripts, install_docker=True)
    assert 'bash "$berth_dir/install_docker.sh" >/dev/null' in lines
    assert lines.index('bash "$berth_dir/install_docker.sh" >/dev/null') < len(lines) - 1
    assert not any("install_docker" in line for line in exec_commands(run, scripts))


def test_instances_named_must_be_managed_and_online() -> None:
    statuses = {"i-0b": "Online", "i-0a": "Online", "i-0c": "ConnectionLost"}
    assert choose_instances("web", statuses, "i-0b", every=False).instance_ids == ["i-0b"]
    assert choose_instances("web", statuses, None, every=False).instance_ids == ["i-0a"]
    assert choose_instances("web", statuses, None, every=True).instance_ids == ["i-0a", "i-0b"]
    with pytest.raises(InstanceUnavailable, match="ConnectionLost in SSM, not Online") as lost:
        choose_instances("web", statuses, "i-0c", every=False)
    assert lost.value.field == "instance"
    with pytest.raises(InstanceUnavailable, match="not one of target 'web'"):
        choose_instances("web", statuses, "i-0d", every=True)
    with pytest.raises(InstanceUnavailable, match="no instance of target 'web' is Online"):
        choose_instances("web", {"i-0c": "Inactive"}, None, every=True)


def test_at_most_fifty_instances_and_the_rest_counted() -> None:
    statuses = {f"i-{n:08x}": "Online" for n in range(60)}
    choice = choose_instances("web", statuses, None, every=True)
    assert len(choice.instance_ids) == 50 and choice.left_out == 10 and choice.instance_ids[0] == "i-00000000"


def test_log_lines_are_prefixed_and_merged_by_time_newest_last() -> None:
    a = InvocationOutput("i-a", "Success", 0, "2026-01-01T00:00:01.000000000Z one\nno stamp\n"
                                              "2026-01-01T00:00:04.000000000Z four\n")
    b = InvocationOutput("i-b", "Success", 0, "Error: No such container: web\n"
                                              "2026-01-01T00:00:02.000000000Z two\n")
    assert merge_log_lines([a, b]) == [
        "i-b Error: No such container: web", "i-a 2026-01-01T00:00:01.000000000Z one", "i-a no stamp",
        "i-b 2026-01-01T00:00:02.000000000Z two", "i-a 2026-01-01T00:00:04.000000000Z four"]


def test_output_is_cut_at_ssms_inline_limit() -> None:
    assert InvocationOutput("i-a", "Success", 0, "x" * 24_000).cut
    assert not InvocationOutput("i-a", "Success", 0, "x" * 23_999).cut


@pytest.mark.parametrize("outputs, code", [
    ([("Success", 0), ("Failed", 3)], 3), ([("Success", 0)], 0), ([("Success", 0), ("InProgress", None)], None),
    ([("TimedOut", None)], 1), ([], None),
])
def test_the_overall_exit_code(outputs: list[tuple[str, int | None]], code: int | None) -> None:
    assert overall_exit_code([InvocationOutput(f"i-{n}", s, c, "") for n, (s, c) in enumerate(outputs)]) == code


def test_a_command_that_would_pass_ssms_64_kb_with_the_targets_spec_is_refused_naming_it(
        scripts: dict[str, str]) -> None:
    quotes = (MAX_ENV_COMMAND_BYTES // 64 - 40) // 7     # the env at its budget, in the character quoting inflates most
    spec = container(env={f"V{n:02d}": "'" * quotes for n in range(64)},
                     ports=[f"{8000 + n}:{9000 + n}" for n in range(32)])
    assert document_bytes(exec_commands(OneOffRun("abc", PINNED, spec, ("true",), 60), scripts)) < MAX_DOCUMENT_BYTES
    with pytest.raises(InvalidRequest, match="over SSM's 65536; shorten the command by") as refused:
        exec_commands(OneOffRun("abc", PINNED, spec, ("x" * 250,) * 60, 60), scripts)
    assert refused.value.field == "command"
    # A target of ordinary size takes the longest command the API admits (16 KiB).
    assert document_bytes(exec_commands(OneOffRun("abc", PINNED, container(), ("x" * 250,) * 60, 60), scripts)) < (
        MAX_DOCUMENT_BYTES)


def test_a_release_task_and_the_containers_env_share_one_budget_so_the_task_always_fits(
        scripts: dict[str, str]) -> None:
    from pydantic import ValidationError

    from chalicelib.domain.spec import TargetSpec, describe_validation_error
    from tests.unit.conftest import EXAMPLE_SPEC

    quotes = (MAX_ENV_COMMAND_BYTES // 64 - 40) // 7
    env = {f"V{n:02d}": "'" * quotes for n in range(60)}
    base = {**{k: v for k, v in EXAMPLE_SPEC.items() if k not in ("image", "container", "health_check")},
            "container": {"name": "web", "env": env, "ports": [f"{8000 + n}:{9000 + n}" for n in range(32)]}}
    room = MAX_ENV_COMMAND_BYTES - TargetSpec.model_validate(base).container.command_budget_bytes()
    fits = TargetSpec.model_validate({**base, "release": {"command": ["x" * (room - 2)]}})
    assert fits.release is not None
    lines = exec_commands(OneOffRun("release-d-1", PINNED, fits.container, tuple(fits.release.command), 600), scripts,
                          install_docker=True)
    assert document_bytes(lines) < MAX_DOCUMENT_BYTES
    with pytest.raises(ValidationError) as refused:
        TargetSpec.model_validate({**base, "release": {"command": ["x" * (room + 10)]}})
    assert "release: the command and the container's env" in describe_validation_error(refused.value)
