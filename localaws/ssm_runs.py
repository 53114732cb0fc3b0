"""Per-command Run Command state: one invocation per targeted instance, read-counted, rate-controlled.

A ``CommandRun`` is kept in moto's SSM backend (attribute ``localaws_runs``) beside moto's own
``Command``, so moto's reset drops both together. Each invocation fixes its ``InstanceOutcome`` at
send time. Time advances by reads: a sent invocation reports ``InProgress`` for its first
``polls_before_done`` reads, then its outcome. A read is GetCommandInvocation, being returned by
ListCommandInvocations, or its command being returned by ListCommands (a poller that watches only the
command's counts sees it progress as one that pages the invocations does).

Rate control follows the Run Command docs. At most ``MaxConcurrency`` invocations are in flight; the
rest wait as ``Pending`` and are sent, in target order, as earlier ones finish. Once the errors
(Failed, ExecutionTimedOut; delivery timeouts do not count) exceed ``MaxErrors``, nothing more is sent
and the waiting invocations end as Cancelled / ``Terminated``. With the default outcomes (no polls)
every invocation finishes as soon as it is sent, so a command completes inside SendCommand.

Command status: InProgress until every invocation is final, then Cancelled (CancelCommand), Failed or
TimedOut (errors over MaxErrors), Success, or - some invocations not Success but within the budget -
Success with details ``Incomplete``, which is why callers must look at each invocation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from .outcomes import InstanceOutcome

PLUGIN_NAME = "aws:runShellScript"
STDOUT_LIMIT = 24000
STDERR_LIMIT = 8000
PLUGIN_OUTPUT_LIMIT = 2500
_ERROR_MARKER = "\n----------ERROR-------\n"
_API_STATUS = {
    "Pending": ("Pending", "Pending"),
    "InProgress": ("InProgress", "InProgress"),
    "Success": ("Success", "Success"),
    "Failed": ("Failed", "Failed"),
    "TimedOut": ("TimedOut", "ExecutionTimedOut"),
    "DeliveryTimedOut": ("TimedOut", "DeliveryTimedOut"),
    "Cancelled": ("Cancelled", "Cancelled"),
    "Terminated": ("Cancelled", "Terminated"),
}
_COUNTED_ERRORS = ("Failed", "TimedOut")


@dataclass
class Invocation:
    instance_id: str
    outcome: InstanceOutcome
    sent: bool = False
    reads: int = 0
    lookups: int = 0
    cancelled: bool = False
    terminated: bool = False

    def visible(self) -> bool:
        """Whether a lookup finds the invocation; each lookup before it is visible counts (and fails)."""
        if self.lookups >= self.outcome.not_found_reads:
            return True
        self.lookups += 1
        return False

    @property
    def kind(self) -> str:
        """Where the invocation is: Pending, InProgress, Cancelled, Terminated or the outcome's status."""
        if self.cancelled:
            return "Cancelled"
        if self.terminated:
            return "Terminated"
        if not self.sent:
            return "Pending"
        return self.outcome.status if self.reads >= self.outcome.polls_before_done else "InProgress"

    @property
    def done(self) -> bool:
        return self.kind not in ("Pending", "InProgress")

    @property
    def ran(self) -> bool:
        """Finished by running (so it has a response code and output)."""
        return self.done and not (self.cancelled or self.terminated)

    def status(self) -> tuple[str, str]:
        """``(Status, StatusDetails)`` as the API reports them now."""
        return _API_STATUS[self.kind]

    def response_code(self) -> int:
        return self.outcome.response_code if self.ran else -1

    def stdout(self) -> str:
        return self.outcome.stdout if self.ran else ""

    def stderr(self) -> str:
        return self.outcome.stderr if self.ran else ""

    def plugin_output(self) -> str:
        """Plugin ``Output`` as Run Command shows it: stdout, then stderr after a marker line, cut to 2500."""
        text = self.stdout() + (_ERROR_MARKER + self.stderr() if self.stderr() else "")
        return text[:PLUGIN_OUTPUT_LIMIT]


def _share(value: str, target_count: int, default: int) -> int:
    """A MaxConcurrency / MaxErrors value (count or percent of the targets) as a count."""
    if not value:
        return default
    if value.endswith("%"):
        return target_count * int(value[:-1]) // 100
    return int(value)


@dataclass
class CommandRun:
    command_id: str
    document_name: str
    comment: str
    requested: datetime.datetime
    by_targets: bool
    max_errors: str
    max_concurrency: str = "50"
    notification_config: dict[str, Any] | None = None
    invocations: dict[str, Invocation] = field(default_factory=dict)
    output_s3_bucket: str = ""
    output_s3_prefix: str = ""

    def stdout_url(self, region: str, instance_id: str) -> str:
        """Where SSM writes the whole stdout when the command names an output bucket (else "")."""
        if not self.output_s3_bucket:
            return ""
        prefix = f"{self.output_s3_prefix}/" if self.output_s3_prefix else ""
        return (f"https://s3.{region}.amazonaws.com/{self.output_s3_bucket}/{prefix}{self.command_id}/{instance_id}/"
                "awsrunShellScript/0.awsrunShellScript/stdout")

    def _budget(self) -> int:
        return _share(self.max_errors, len(self.invocations), 0)

    def _errors(self) -> int:
        return sum(invocation.kind in _COUNTED_ERRORS for invocation in self.invocations.values())

    def advance(self) -> None:
        """Send waiting invocations in ticks: each tick fills the free window at once (they run
        concurrently), then results are looked at; once errors exceed the budget the rest is terminated."""
        window = max(1, _share(self.max_concurrency, len(self.invocations), 50))
        waiting = [i for i in self.invocations.values() if i.kind == "Pending"]
        while waiting:
            if self._errors() > self._budget():
                for invocation in waiting:
                    invocation.terminated = True
                return
            free = window - sum(i.kind == "InProgress" for i in self.invocations.values())
            if free <= 0:
                return
            for invocation in waiting[:free]:
                invocation.sent = True
            waiting = waiting[free:]

    def read(self, invocation: Invocation) -> None:
        """One read of a sent invocation: it moves one poll closer to done, which may free the window."""
        if invocation.sent:
            invocation.reads += 1
            self.advance()

    def cancel(self, instance_ids: list[str] | None) -> None:
        """CancelCommand: invocations not yet final (sent or waiting) become Cancelled."""
        for invocation in self.invocations.values():
            if not invocation.done and (instance_ids is None or invocation.instance_id in instance_ids):
                invocation.cancelled = True
        self.advance()

    def counts(self) -> dict[str, int]:
        kinds = [invocation.kind for invocation in self.invocations.values()]
        return {
            "TargetCount": len(kinds),
            "CompletedCount": sum(kind not in ("Pending", "InProgress") for kind in kinds),
            "ErrorCount": sum(kind in _COUNTED_ERRORS for kind in kinds),
            "DeliveryTimedOutCount": kinds.count("DeliveryTimedOut"),
        }

    def status(self) -> tuple[str, str]:
        """Command-level ``(Status, StatusDetails)`` aggregated from the invocations."""
        kinds = [invocation.kind for invocation in self.invocations.values()]
        if not kinds:
            return ("Success", "NoInstancesInTag" if self.by_targets else "Success")
        if "InProgress" in kinds or "Pending" in kinds:
            return ("InProgress", "InProgress")
        if any(invocation.cancelled for invocation in self.invocations.values()):
            return ("Cancelled", "Cancelled")
        if self._errors() > self._budget():
            return _API_STATUS["Failed" if "Failed" in kinds else "TimedOut"]
        if kinds.count("DeliveryTimedOut") > self._budget():
            return _API_STATUS["DeliveryTimedOut"]
        if all(kind == "Success" for kind in kinds):
            return ("Success", "Success")
        return ("Success", "Incomplete")


def runs_of(backend: Any) -> dict[str, CommandRun]:
    """The runs kept on a moto SSM backend, created on first use (moto's reset clears its ``__dict__``)."""
    runs: dict[str, CommandRun] | None = getattr(backend, "localaws_runs", None)
    if runs is None:
        runs = {}
        backend.localaws_runs = runs
    return runs
