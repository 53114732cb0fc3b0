"""The shell of the operators' commands: a container's logs, and a one-off run of the target's image (`berth exec`).

Both go to instances as `AWS-RunShellScript` lines, like the deploy command (command.py), and follow its rule: every
value reaches the shell through `shlex.quote` as one argument, after validation at the edge, and nothing is evaluated.
Each script sends its stderr to stdout (`exec 2>&1`): the output keeps its order and gets SSM's larger inline limit
(24,000 characters of stdout, 8,000 of stderr).

A one-off run starts the image the target runs now (its current revision, by digest) with the env and run options a
swap gives the service's container (`run_option_args`, turned into `docker run`'s `--option=value` words as
start_container.sh does), with these differences: `--rm`, no published ports (the service holds them), no restart
policy (it excludes `--rm`), and the operator's command in place of the spec's `command` (the spec's `entrypoint`
stays, as it wraps every command the image runs). `timeout` bounds it; a run that overstays is removed by name.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .spec import ContainerSpec
from .spec.command_args import run_option_args

SINCE = r"^([1-9][0-9]{0,4})([smh])$"
MAX_SINCE_SECONDS = 24 * 3600
MAX_TAIL = 10_000
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# start_container.sh's run options that take no value; every other option comes as `--flag VALUE`.
_SWITCHES = frozenset({"--read-only", "--init", "--privileged"})
# A restart policy and `--rm` exclude each other; a one-off run is removed, never restarted.
_NOT_FOR_ONE_OFF_RUNS = frozenset({"--restart"})
EXEC_CONTAINER_PREFIX = "berth-exec-"
EXEC_LABEL = "berth.exec-for"
# `timeout` exits 124 when it stopped the command, 137 when it had to kill it.
TIMED_OUT_CODES = (124, 137)
KILL_AFTER_SECONDS = 10


def since_seconds(since: str) -> int:
    """`10m` -> 600. ValueError for anything but Ns / Nm / Nh of at most 24 hours."""
    match = re.fullmatch(SINCE, since)
    if match is None:
        raise ValueError("since must be a number of seconds, minutes or hours: 30s, 10m, 2h")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SINCE_SECONDS:
        raise ValueError(f"since reaches back {seconds} seconds, at most 24h ({MAX_SINCE_SECONDS})")
    return seconds


def logs_commands(container_name: str, since: str, tail: int) -> list[str]:
    """`docker logs` of the container, with timestamps so several instances' lines can be put in time order."""
    since_seconds(since)
    if not 1 <= tail <= MAX_TAIL:
        raise ValueError(f"tail must be 1 to {MAX_TAIL}")
    words = ["docker", "logs", "--timestamps", "--since", since, "--tail", str(tail), "--", container_name]
    return ["#!/bin/sh", "# berth logs", "set -u", "exec 2>&1", " ".join(shlex.quote(word) for word in words)]


@dataclass(frozen=True)
class OneOffRun:
    """A one-off container: `run_id` names it (berth-exec-<run_id>) so a run that overstays can be removed."""

    run_id: str
    image: str                 # the target's current revision, pinned by digest
    container: ContainerSpec
    command: tuple[str, ...]
    timeout_seconds: int

    @property
    def container_name(self) -> str:
        return EXEC_CONTAINER_PREFIX + self.run_id


def one_off_docker_args(run: OneOffRun) -> list[str]:
    """`docker`'s arguments for the run, unquoted: `run --rm ... IMAGE [ENTRYPOINT REST...] COMMAND...`."""
    args = ["run", "--rm", "--name", run.container_name, "--label", f"{EXEC_LABEL}={run.container.name}"]
    for key, value in sorted(run.container.env.items()):
        args += ["--env", f"{key}={value}"]
    # Secrets from Parameter Store or Secrets Manager join the environment here, as the swap passes them, once the
    # spec names them: the same words the swap's container gets, never a value in a log line.
    options, entrypoint_rest = docker_run_options(run.container)
    return [*args, *options, run.image, *entrypoint_rest, *run.command]


def docker_run_options(container: ContainerSpec) -> tuple[list[str], list[str]]:
    """The spec's run options as `docker run` words (what start_container.sh's build_run_options makes of them), and
    the entrypoint's arguments after the first, which go after the image. The spec's `command` is left out: a one-off
    run has its own."""
    words = run_option_args(container)
    options: list[str] = []
    entrypoint: list[str] = []
    index = 0
    while index < len(words):
        flag = words[index]
        if flag in _SWITCHES:
            options.append(flag)
            index += 1
            continue
        value = words[index + 1]
        index += 2
        if flag == "--entrypoint":
            entrypoint.append(value)
        elif flag != "--cmd" and flag not in _NOT_FOR_ONE_OFF_RUNS:
            options.append(f"{flag}={value}")
    if entrypoint:
        options.append(f"--entrypoint={entrypoint[0]}")
    return options, entrypoint[1:]


def exec_commands(run: OneOffRun) -> list[str]:
    """The script: the run under `timeout`, its container removed if it overstayed, the run's exit code as the
    script's (SSM reports it as the invocation's ResponseCode)."""
    docker_run = " ".join(shlex.quote(arg) for arg in one_off_docker_args(run))
    name = shlex.quote(run.container_name)
    timed_out = shlex.quote(f"berth-exec: stopped after {run.timeout_seconds} seconds")
    return [
        "#!/bin/sh",
        f"# berth exec {run.run_id}",
        "set -u",
        "exec 2>&1",
        "status=0",
        f"timeout --kill-after={KILL_AFTER_SECONDS} {run.timeout_seconds} docker {docker_run} || status=$?",
        'if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then',
        f"    echo {timed_out}",
        f"    docker rm -f {name} >/dev/null 2>&1 || true",
        "fi",
        'exit "$status"',
    ]


@dataclass(frozen=True)
class ExecRecord:
    """The audit record of a one-off run: who ran what, with which image, where, and when."""

    command_id: str
    target: str
    caller: str
    command: tuple[str, ...]
    image: str
    instance_ids: tuple[str, ...]
    run_id: str
    timeout_seconds: int
    started_at: str            # ISO 8601, UTC
