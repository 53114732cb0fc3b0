"""Which instances an operator's command goes to, and what each one answered.

Commands go by InstanceIds (at most 50 a call) to instances SSM reports Online: a named instance must be one of the
target's managed instances and Online, or the request is refused before anything is sent (a clear 409 naming
`instance`), rather than becoming a command that times out undelivered ten minutes later.

SSM keeps 24,000 characters of an invocation's stdout inline (GetCommandInvocation); output that reaches it was cut,
and the answer says so. With an output bucket set, SSM also writes the whole output to S3 and the answer carries its
URL (StandardOutputUrl): berth does not read it back through the API, whose answers are bounded (6 MB for a Lambda).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InstanceUnavailable

MAX_INSTANCES = 50                   # SendCommand's InstanceIds
INLINE_STDOUT_LIMIT = 24_000
FINAL_STATUSES = frozenset({"Success", "Failed", "Cancelled", "TimedOut"})


@dataclass(frozen=True)
class InstanceChoice:
    instance_ids: list[str]
    left_out: int = 0                # online instances beyond MAX_INSTANCES


def choose_instances(target: str, ping_statuses: dict[str, str], named: str | None, every: bool) -> InstanceChoice:
    """The named instance; else every Online instance (`every`, at most 50, in id order), or the first one."""
    if named is not None:
        status = ping_statuses.get(named)
        if status is None:
            raise InstanceUnavailable(f"instance {named} is not one of target {target!r}'s SSM managed instances")
        if status != "Online":
            raise InstanceUnavailable(f"instance {named} is {status} in SSM, not Online: it cannot run a command now")
        return InstanceChoice([named])
    online = sorted(instance for instance, status in ping_statuses.items() if status == "Online")
    if not online:
        raise InstanceUnavailable(f"no instance of target {target!r} is Online in SSM "
                                  f"({len(ping_statuses)} managed, none answering)", field=None)
    chosen = online[:MAX_INSTANCES] if every else online[:1]
    return InstanceChoice(chosen, len(online) - len(chosen) if every else 0)


@dataclass(frozen=True)
class SentCommand:
    """What SSM says of a command berth sent by InstanceIds: its comment (which names the target) and instances."""

    command_id: str
    comment: str
    instance_ids: list[str]


@dataclass(frozen=True)
class InvocationOutput:
    """One instance's part of a command: its SSM status, exit code once it ended, and inline output."""

    instance_id: str
    status: str
    exit_code: int | None
    output: str
    output_url: str | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def cut(self) -> bool:
        return len(self.output) >= INLINE_STDOUT_LIMIT


def overall_exit_code(outputs: list[InvocationOutput]) -> int | None:
    """None while any instance runs; else the first non-zero exit code (1 for an instance that never reported
    one: cancelled, timed out by SSM, undelivered), or 0."""
    if not outputs or not all(output.done for output in outputs):
        return None
    for output in outputs:
        if output.exit_code is None or output.exit_code < 0:
            return 1
        if output.exit_code != 0:
            return output.exit_code
    return 0


def merge_log_lines(outputs: list[InvocationOutput]) -> list[str]:
    """Every instance's lines, each prefixed by its instance id, newest last.

    `docker logs --timestamps` starts each line with a fixed-width RFC 3339 time, so lines sort as text; a line
    without one (an error from docker, a line cut by SSM) keeps the time of the line before it on its instance.
    """
    keyed: list[tuple[str, int, int, str]] = []
    for order, output in enumerate(outputs):
        when = ""
        for number, line in enumerate(output.output.splitlines()):
            stamp = line.split(" ", 1)[0]
            if len(stamp) >= 20 and stamp[4:5] == "-" and stamp[10:11] == "T":
                when = stamp
            keyed.append((when, order, number, f"{output.instance_id} {line}"))
    return [line for *_, line in sorted(keyed)]
