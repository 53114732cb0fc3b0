"""The shell of the operators' commands: a container's logs, and a one-off run of the target's image (`berth exec`).

Both go to instances as `AWS-RunShellScript` lines, like the deploy command (command.py), and follow its rule: every
value reaches the shell through `shlex.quote` as one argument, after validation at the edge, and nothing is evaluated.
Each script sends its stderr to stdout (`exec 2>&1`): the output keeps its order and gets SSM's larger inline limit
(24,000 characters of stdout, 8,000 of stderr).

A one-off run (`berth exec`, a deployment's release task) is start_container.sh's `--one-off` mode, shipped as a swap
ships it, with the arguments a swap of the target would get: so the run has what the service's container has (env,
secrets read on the instance into a private env file, volumes, run options, the registry login and the pull of an
image not yet there, the architecture check), with these differences: `--rm`, no published ports (the service holds
them), no restart policy (it excludes `--rm`), and the operator's command in place of the spec's `command` (the
spec's `entrypoint` stays, as it wraps every command the image runs). `timeout` bounds it; a run that overstays is
removed by name. The script's exit code is the run's; berth's own lines go to stderr, and only when something fails.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .command import MAX_DOCUMENT_BYTES, DeployCommand, document_bytes, shipped_script, start_container_args
from .errors import InvalidRequest
from .image_ref import parse_image_ref
from .spec import ContainerSpec

SINCE = r"^([1-9][0-9]{0,4})([smh])$"
MAX_SINCE_SECONDS = 24 * 3600
MAX_TAIL = 10_000
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# start_container.sh names a one-off run's container berth-exec-<run id> and removes it by that name if it overstays.
EXEC_CONTAINER_PREFIX = "berth-exec-"


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


def one_off_args(run: OneOffRun) -> list[str]:
    """start_container.sh's arguments for the run, unquoted: the swap's own (start_container_args: env, run options,
    secrets, registry login), then `--one-off RUN_ID`, its timeout and its command, a `--one-off-arg` a word."""
    swap = DeployCommand(run.run_id, parse_image_ref(run.image), run.container, None)
    args = [*start_container_args(swap), "--one-off", run.run_id, "--one-off-timeout", str(run.timeout_seconds)]
    for word in run.command:
        args += ["--one-off-arg", word]
    return args


def exec_commands(run: OneOffRun, scripts: dict[str, str], install_docker: bool = False) -> list[str]:
    """The `commands` of AWS-RunShellScript: start_container.sh shipped as a swap ships it (command.py), run with
    `--one-off`. `install_docker` runs install_docker.sh first, only its errors kept (a release task may run on an
    instance no deployment reached yet); `berth exec` goes to instances that run the target already."""
    lines = [
        "#!/bin/sh",
        f"# berth exec {run.run_id}",
        "set -eu",
        'berth_dir="$(mktemp -d /tmp/berth.XXXXXX)"',
        "trap 'rm -rf \"$berth_dir\"' EXIT",
    ]
    shipped = ("install_docker.sh", "start_container.sh") if install_docker else ("start_container.sh",)
    for name in shipped:
        lines += shipped_script(name, scripts[name])
    if install_docker:
        lines.append('bash "$berth_dir/install_docker.sh" >/dev/null')
    lines.append('bash "$berth_dir/start_container.sh" ' + " ".join(shlex.quote(arg) for arg in one_off_args(run)))
    size = document_bytes(lines)
    if size > MAX_DOCUMENT_BYTES:
        # The target's spec has most of SSM's 64 KB (its env, run options and secrets travel too): the command is what
        # the caller can shorten.
        raise InvalidRequest(f"command: with this target's spec the SSM command would take {size} bytes, over SSM's "
                             f"{MAX_DOCUMENT_BYTES}; shorten the command by {size - MAX_DOCUMENT_BYTES} bytes",
                             field="command")
    return lines


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
