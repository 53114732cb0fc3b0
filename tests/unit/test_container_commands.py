"""The operators' commands: `docker logs` and a one-off `docker run --rm`, run here under `sh` with a stand-in `docker`
that records its argv NUL-separated, so each value is seen to arrive as one argument and no payload ever runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from chalicelib.domain.container_commands import (
    OneOffRun,
    docker_run_options,
    exec_commands,
    logs_commands,
    one_off_docker_args,
    since_seconds,
)
from chalicelib.domain.errors import InstanceUnavailable
from chalicelib.domain.instance_output import (
    InvocationOutput,
    choose_instances,
    merge_log_lines,
    overall_exit_code,
)
from chalicelib.domain.spec import ContainerSpec

PINNED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "ab" * 32
# Each would run `touch "$MARK"` if any shell evaluated it.
HOSTILE = ["'; touch \"$MARK\"; '", "$(touch \"$MARK\")", "`touch \"$MARK\"`", "a\ntouch \"$MARK\"", "-rf",
           '"; touch "$MARK"; "', "\\", "*", "~", "$MARK", "|| touch \"$MARK\""]


def run_script(tmp_path: Path, lines: list[str], docker_exit: int = 0) -> tuple[int, str, list[list[str]]]:
    """Run the command's lines as SSM would (one script, under sh); returns its exit code, output and docker calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\" >> \"$CALLS\"\nprintf '\\n' >> \"$CALLS\"\n"
                      'echo "docker ran"\nexit "$DOCKER_EXIT"\n')
    docker.chmod(0o755)
    script = tmp_path / "script.sh"
    script.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "MARK": str(tmp_path / "pwned"), "DOCKER_EXIT": str(docker_exit)}
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    recorded = calls.read_bytes().decode() if calls.exists() else ""
    argvs = [entry.split("\0") for entry in recorded.split("\0\n") if entry]
    assert not (tmp_path / "pwned").exists(), "a value was evaluated by the shell"
    return result.returncode, result.stdout + result.stderr, argvs


def container(**fields: object) -> ContainerSpec:
    return ContainerSpec.model_validate({"name": "web", **fields})


def test_logs_run_docker_logs_with_each_value_as_one_argument(tmp_path: Path) -> None:
    code, output, calls = run_script(tmp_path, logs_commands("web.api-1", "2h", 10_000))
    assert code == 0 and output == "docker ran\n"
    assert calls == [["logs", "--timestamps", "--since", "2h", "--tail", "10000", "--", "web.api-1"]]


@pytest.mark.parametrize("since, tail", [("$(id)", 10), ("25h", 10), ("10m", 0), ("10m", 10_001), ("1d", 1)])
def test_logs_refuse_what_the_edge_refuses(since: str, tail: int) -> None:
    with pytest.raises(ValueError):
        logs_commands("web", since, tail)


@pytest.mark.parametrize("since, seconds", [("1s", 1), ("10m", 600), ("24h", 86_400), ("1440m", 86_400)])
def test_since_is_seconds_minutes_or_hours_up_to_a_day(since: str, seconds: int) -> None:
    assert since_seconds(since) == seconds


def test_a_one_off_run_gets_env_and_run_options_as_the_swap_does_and_the_command_as_given(tmp_path: Path) -> None:
    spec = container(ports=["80:8080"], env={"DB_URL": "postgres://u:p@db/x", "QUOTE": "it's $(here)"},
                     entrypoint=["/entry", "--verbose"], command=["serve"], volumes=["/srv:/data:ro"],
                     user="1000:1000", restart="always", init=True, read_only=True, network="backend",
                     labels={"team": "web"})
    run = OneOffRun("abc123", PINNED, spec, ("rake", "db:status", *HOSTILE), 120)
    code, output, calls = run_script(tmp_path, exec_commands(run))
    assert code == 0 and "docker ran" in output
    assert calls == [one_off_docker_args(run)]
    assert calls[0] == [
        "run", "--rm", "--name", "berth-exec-abc123", "--label", "berth.exec-for=web",
        "--env", "DB_URL=postgres://u:p@db/x", "--env", "QUOTE=it's $(here)",
        "--user=1000:1000", "--network=backend", "--volume=/srv:/data:ro", "--label=team=web",
        "--read-only", "--init", "--entrypoint=/entry",
        PINNED, "--verbose", "rake", "db:status", *HOSTILE]


@pytest.mark.parametrize("docker_exit", [0, 3, 124])
def test_the_script_exits_with_the_runs_code_and_removes_a_run_that_overstayed(tmp_path: Path,
                                                                               docker_exit: int) -> None:
    run = OneOffRun("abc123", PINNED, container(), ("true",), 60)
    code, output, calls = run_script(tmp_path, exec_commands(run), docker_exit)
    assert code == docker_exit
    assert calls[0][:2] == ["run", "--rm"]
    if docker_exit == 124:
        assert calls[1] == ["rm", "-f", "berth-exec-abc123"] and "stopped after 60 seconds" in output
    else:
        assert len(calls) == 1


def test_run_options_leave_out_the_specs_command_and_restart_policy() -> None:
    options, after_image = docker_run_options(container(command=["serve", "--port", "80"], restart="on-failure:3",
                                                        privileged=True, cpus=0.5))
    assert options == ["--cpus=0.5", "--privileged"] and after_image == []


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
