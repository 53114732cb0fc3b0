"""What a simulated instance's Docker answers to berth's operator commands, with outputs a test chooses.

``set_container_logs(text, instance_id)`` sets what ``docker logs`` prints on an instance (every instance when
``instance_id`` is None); ``set_one_off_run(output, exit_code, instance_id)`` what a one-off run
(``start_container.sh --one-off``) prints and the code it exits with. The command's lines are read with ``shlex`` as
the shell would read them: ``--tail N`` keeps the last N lines, a ``--timestamps`` run gets a timestamp before each
line that has none, and ``docker_calls()`` lists each call's argv as the shell would have passed it (so a test sees
what a quoted value became): ``docker logs ...``, or ``start_container.sh ... --one-off RUN_ID ...`` for a one-off run.
An instance with nothing set answers as its configured outcome does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from .outcomes import InstanceOutcome
from .state import LOCK, current

EVERY_INSTANCE = "*"
# shlex drops quotes, so an argument spelled exactly like one of these would end the argv here too.
_OPERATORS = frozenset({"||", "&&", ";", "|"})
_REDIRECTION = re.compile(r"^[0-9]*[<>]")
STAMP = "2026-01-01T00:00:00.000000000Z"


@dataclass(frozen=True)
class OneOffRun:
    output: str = ""
    exit_code: int = 0


def set_container_logs(text: str, instance_id: str | None = None) -> None:
    with LOCK:
        current().container_logs[instance_id or EVERY_INSTANCE] = text


def set_one_off_run(output: str = "", exit_code: int = 0, instance_id: str | None = None) -> None:
    with LOCK:
        current().one_off_runs[instance_id or EVERY_INSTANCE] = OneOffRun(output, exit_code)


def docker_calls() -> list[tuple[str, list[str]]]:
    """(instance id, docker's argv) of every operator command sent since the last reset, oldest first."""
    with LOCK:
        return [(instance, list(argv)) for instance, argv in current().docker_calls]


ONE_OFF_SCRIPT = "start_container.sh"


def _docker_argv(commands: list[str]) -> list[str] | None:
    """The argv of the first line that runs `docker logs`, or, in a one-off
    run's command (its second line says `# berth exec`), of the line that runs start_container.sh with bash (the
    script's path shortened to its name)."""
    one_off = len(commands) > 1 and commands[1].startswith("# berth exec ")
    for line in commands:
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if one_off and words[:1] == ["bash"] and words[1:2] and words[1].endswith("/" + ONE_OFF_SCRIPT):
            return [ONE_OFF_SCRIPT, *words[2:]]
        if "docker" not in words:
            continue
        argv = words[words.index("docker"):]
        for end, word in enumerate(argv):
            if word in _OPERATORS or _REDIRECTION.match(word):   # `... || status=$?`, `2>&1`: the shell's
                argv = argv[:end]
                break
        if argv[1:2] == ["logs"]:
            return argv
    return None


def _tail(text: str, argv: list[str]) -> str:
    lines = text.splitlines()
    if "--tail" in argv:
        lines = lines[-int(argv[argv.index("--tail") + 1]):]
    if "--timestamps" in argv:
        lines = [line if line[:4].isdigit() and "T" in line.split(" ", 1)[0] else f"{STAMP} {line}" for line in lines]
    return "".join(line + "\n" for line in lines)


def outcome(instance_id: str, command: dict[str, Any]) -> InstanceOutcome | None:
    """The instance's answer to an operator command, when the test set one; None otherwise."""
    argv = _docker_argv(list((command.get("Parameters") or {}).get("commands", [])))
    if argv is None:
        return None
    with LOCK:
        state = current()
        state.docker_calls.append((instance_id, argv))
        if argv[0] == "docker" and argv[1] == "logs":
            text = state.container_logs.get(instance_id, state.container_logs.get(EVERY_INSTANCE))
            return None if text is None else InstanceOutcome(stdout=_tail(text, argv))
        run = state.one_off_runs.get(instance_id, state.one_off_runs.get(EVERY_INSTANCE))
    if run is None:
        return None
    return InstanceOutcome(status="Success" if run.exit_code == 0 else "Failed", response_code=run.exit_code,
                           stdout=run.output)
