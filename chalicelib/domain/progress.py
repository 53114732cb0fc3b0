"""Turning what SSM reports about one command into progress, success or a failure message a person can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from .deployment import InstanceResult, Tally
from .exit_codes import EXIT_MEANING, ScriptExit

FINAL_INVOCATION_STATUSES = frozenset({"Success", "Failed", "TimedOut", "Cancelled", "DeliveryTimedOut",
                                       "Undeliverable", "Terminated", "InvalidPlatform", "AccessDenied", "NeverRan"})
FINAL_COMMAND_STATUSES = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
MAX_FAILURE_MESSAGE = 5000
# Failed instances whose output tail the record keeps per attempt (the failure is classified from all of them before):
# enough to show it, while a record of thousands of failed instances stays far under DynamoDB's 400 KB item limit.
MAX_STORED_TAILS = 50
_STEP = re.compile(r"^berth-step: (\S+)\s*$", re.MULTILINE)
_DIGEST = re.compile(r"^berth-digest: \S*?(sha256:[0-9a-f]{64})\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Invocation:
    """One instance's view of a command, as ListCommandInvocations or GetCommandInvocation report it."""

    instance_id: str
    status: str
    response_code: int | None
    output: str


class Phase(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class CommandState:
    """What ListCommands says of a whole command: its status and SSM's own counts of its targets."""

    status: str
    status_details: str = ""
    target_count: int = 0
    completed_count: int = 0
    error_count: int = 0              # Failed or execution timed out
    delivery_timed_out_count: int = 0

    @property
    def over(self) -> bool:
        return self.status in FINAL_COMMAND_STATUSES


@dataclass(frozen=True)
class Progress:
    phase: Phase
    instances: dict[str, InstanceResult]
    percent: int
    summary: str
    failure_message: str = ""
    tally: Tally = field(default_factory=Tally, compare=False)   # the instances by outcome, as the record keeps them

    @property
    def digests(self) -> set[str]:
        return {result.digest for result in self.instances.values() if result.digest}


def tally_results(expected: list[str], results: dict[str, InstanceResult]) -> Tally:
    """Instances of an attempt by outcome, from its per-instance results."""
    total = len(set(expected) | set(results))
    finished = [result for result in results.values() if result.status in FINAL_INVOCATION_STATUSES]
    succeeded = sum(1 for result in finished if result.succeeded)
    return Tally(total=total, succeeded=succeeded, failed=len(finished) - succeeded, pending=total - len(finished))


def tally_counts(expected: list[str], state: CommandState | None) -> Tally:
    """Instances of an attempt by outcome, from SSM's counts alone (no per-instance page read). An instance SSM
    cancelled or terminated counts as done, not failed, until the command is over and each instance is read."""
    if state is None:
        return Tally(total=len(expected), pending=len(expected))
    total = max(len(expected), state.target_count)
    completed = min(state.completed_count, total)
    failed = min(state.error_count + state.delivery_timed_out_count, completed)
    return Tally(total=total, succeeded=completed - failed, failed=failed, pending=total - completed)


def summary_of(tally: Tally) -> str:
    return f"{tally.succeeded} succeeded, {tally.failed} failed, {tally.pending} pending of {tally.total} instances"


def progress_while_running(expected: list[str], state: CommandState | None) -> Progress:
    """Progress of a command that is not over, from its counts: the same for 1 instance as for 10,000."""
    tally = tally_counts(expected, state)
    done = tally.total - tally.pending
    return Progress(Phase.RUNNING, {}, min(99, done * 100 // max(tally.total, 1)), summary_of(tally), tally=tally)


def success_from_counts(expected: list[str], state: CommandState) -> Progress | None:
    """A command over with Status and StatusDetails both Success had every invocation succeed (SSM says Incomplete as
    soon as one did not). When SSM also targeted exactly as many instances as berth expected, each expected instance
    ran it and succeeded (unless SSM targeted a node berth could not expect, a hybrid `mi-` node sharing the tags,
    while missing an expected one: the README says so), and reading every result page would add nothing: the
    deployment is done at any fleet size, with no per-instance results to keep. None when the counts cannot say so:
    the results must be read."""
    if not (expected and state.status == "Success" and state.status_details == "Success"
            and state.target_count == len(expected) and state.completed_count == state.target_count
            and state.error_count == 0 and state.delivery_timed_out_count == 0):
        return None
    tally = tally_counts(expected, state)
    return Progress(Phase.SUCCEEDED, {}, 100, summary_of(tally), tally=tally)


def instance_result(invocation: Invocation, tail_chars: int = 600) -> InstanceResult:
    steps = _STEP.findall(invocation.output)
    digest = _DIGEST.findall(invocation.output)
    return InstanceResult(
        instance_id=invocation.instance_id,
        status=invocation.status,
        response_code=invocation.response_code,
        step=steps[-1] if steps else None,
        digest=digest[-1] if digest else None,
        output_tail=invocation.output[-tail_chars:],
    )


def assess(
    expected: list[str], invocations: list[Invocation], command_status: str | None, max_errors: str = "0"
) -> Progress:
    """Decide where a command stands.

    `expected` lists the instances the target resolved to when the command was sent. One that never got an invocation
    counts as failed once the command as a whole is over, even though SSM may call the command a Success.
    """
    results = {inv.instance_id: instance_result(inv) for inv in invocations}
    command_over = command_status in FINAL_COMMAND_STATUSES
    all_final = all(result.status in FINAL_INVOCATION_STATUSES for result in results.values())
    if command_over and all_final:
        for instance_id in expected:
            results.setdefault(instance_id, InstanceResult(
                instance_id=instance_id, status="NeverRan",
                output_tail="the instance never ran the command: not managed by SSM, agent offline, or stopped",
            ))
    tally = tally_results(expected, results)
    total, succeeded, finished = tally.total, tally.succeeded, tally.total - tally.pending
    failed = [result for result in results.values() if result.status in FINAL_INVOCATION_STATUSES
              and not result.succeeded]
    summary = summary_of(tally)
    if not (command_over and all_final) or not results:
        if command_over and not results:
            return Progress(Phase.FAILED, results, 100, summary,
                            "the command reached no instance: no instance matched the target, or none is managed "
                            "by SSM", tally)
        return Progress(Phase.RUNNING, results, min(99, finished * 100 // max(total, 1)), summary, tally=tally)
    # An error budget tolerates some failures; a deployment in which no instance succeeded is never a success.
    if succeeded == 0 or len(failed) > _error_budget(max_errors, total):
        return Progress(Phase.FAILED, results, 100, summary, failure_message(failed, total), tally)
    return Progress(Phase.SUCCEEDED, results, 100, summary, tally=tally)


def keep_tails(results: dict[str, InstanceResult], limit: int = MAX_STORED_TAILS) -> dict[str, InstanceResult]:
    """The results as the record keeps them: every instance's status, exit code and step, and the output tails of the
    first `limit` instances (by id) that did not succeed. Succeeded instances' tails are dropped."""
    keep = set(sorted(instance_id for instance_id, result in results.items()
                      if result.output_tail and not result.succeeded)[:limit])
    return {instance_id: result if instance_id in keep or not result.output_tail
            else result.model_copy(update={"output_tail": ""}) for instance_id, result in results.items()}


def _error_budget(max_errors: str, total: int) -> int:
    if max_errors.endswith("%"):
        return total * int(max_errors[:-1]) // 100
    return int(max_errors)


def describe_exit(result: InstanceResult) -> str:
    if result.status == "NeverRan":
        return "never ran the command"
    if result.status == "Cancelled":
        return "SSM status Cancelled (not run: the command was cancelled, or stopped once the error budget was spent)"
    if result.status in ("TimedOut", "DeliveryTimedOut", "Undeliverable"):
        return f"SSM status {result.status}"
    code = result.response_code
    try:
        step, meaning, failure_class = EXIT_MEANING[ScriptExit(code if code is not None else -1)]
    except (ValueError, KeyError):
        step = result.step or "unknown step"
        meaning = "command not found: the script could not run" if code == 127 else "the script failed"
        return f"in step {step}, exit {code}: {meaning}"
    return f"in step {result.step or step}, exit {code}: {meaning} ({failure_class.value})"


def failure_message(failed: list[InstanceResult], total: int, limit: int = MAX_FAILURE_MESSAGE) -> str:
    """Which instances failed, in which step, with the tail of their output, cut to `limit` characters."""
    head = f"{len(failed)} of {total} instances failed. "
    parts = []
    for result in sorted(failed, key=lambda r: r.instance_id):
        tail = result.output_tail.strip()[-400:]
        parts.append(f"{result.instance_id} {describe_exit(result)}" + (f"; output ends: {tail}" if tail else ""))
    message = head + " | ".join(parts)
    suffix = " ... (cut; see berth)"
    if len(message) > limit:
        message = message[: limit - len(suffix)] + suffix
    return message
