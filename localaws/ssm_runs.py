"""Per-command Run Command state: one invocation per targeted instance, read-counted.

A ``CommandRun`` is kept in moto's SSM backend (attribute ``localaws_runs``) beside moto's own
``Command``, so moto's reset drops both together. Each invocation fixes its ``InstanceOutcome`` at
send time and counts reads: the first ``polls_before_done`` reads report ``InProgress``, later ones the
outcome. Command-level status follows the Run Command docs: InProgress until every invocation is
final, then Success, Cancelled, or - once the errors exceed ``MaxErrors`` - Failed / TimedOut.
Within the error budget the command reads ``Success`` with details ``Incomplete``, which is why callers
must look at each invocation.
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
    "Success": ("Success", "Success"),
    "Failed": ("Failed", "Failed"),
    "TimedOut": ("TimedOut", "ExecutionTimedOut"),
    "DeliveryTimedOut": ("TimedOut", "DeliveryTimedOut"),
    "Cancelled": ("Cancelled", "Cancelled"),
}


@dataclass
class Invocation:
    instance_id: str
    outcome: InstanceOutcome
    reads: int = 0
    cancelled: bool = False

    @property
    def done(self) -> bool:
        return self.cancelled or self.reads >= self.outcome.polls_before_done

    @property
    def final_kind(self) -> str:
        """The outcome name once done (``Cancelled`` after CancelCommand), else ``InProgress``."""
        if self.cancelled:
            return "Cancelled"
        return self.outcome.status if self.done else "InProgress"

    def status(self) -> tuple[str, str]:
        """``(Status, StatusDetails)`` as the API reports them now."""
        kind = self.final_kind
        return ("InProgress", "InProgress") if kind == "InProgress" else _API_STATUS[kind]

    def response_code(self) -> int:
        return self.outcome.response_code if self.done and not self.cancelled else -1

    def stdout(self) -> str:
        return self.outcome.stdout if self.done and not self.cancelled else ""

    def stderr(self) -> str:
        return self.outcome.stderr if self.done and not self.cancelled else ""

    def plugin_output(self) -> str:
        """Plugin ``Output`` as Run Command shows it: stdout, then stderr after a marker line, cut to 2500."""
        text = self.stdout() + (_ERROR_MARKER + self.stderr() if self.stderr() else "")
        return text[:PLUGIN_OUTPUT_LIMIT]


def _error_budget(max_errors: str, target_count: int) -> int:
    if max_errors.endswith("%"):
        return target_count * int(max_errors[:-1]) // 100
    return int(max_errors or "0")


@dataclass
class CommandRun:
    command_id: str
    document_name: str
    comment: str
    requested: datetime.datetime
    by_targets: bool
    max_errors: str
    notification_config: dict[str, Any] | None = None
    invocations: dict[str, Invocation] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        kinds = [invocation.final_kind for invocation in self.invocations.values()]
        return {
            "TargetCount": len(kinds),
            "CompletedCount": sum(kind != "InProgress" for kind in kinds),
            "ErrorCount": sum(kind in ("Failed", "TimedOut") for kind in kinds),
            "DeliveryTimedOutCount": kinds.count("DeliveryTimedOut"),
        }

    def status(self) -> tuple[str, str]:
        """Command-level ``(Status, StatusDetails)`` aggregated from the invocations."""
        kinds = [invocation.final_kind for invocation in self.invocations.values()]
        if not kinds:
            return ("Success", "NoInstancesInTag" if self.by_targets else "Success")
        if "InProgress" in kinds:
            return ("InProgress", "InProgress")
        if any(invocation.cancelled for invocation in self.invocations.values()):
            return ("Cancelled", "Cancelled")
        if all(kind == "Success" for kind in kinds):
            return ("Success", "Success")
        errors = sum(kind in ("Failed", "TimedOut", "DeliveryTimedOut") for kind in kinds)
        if errors > _error_budget(self.max_errors, len(kinds)):
            for kind in ("Failed", "TimedOut", "DeliveryTimedOut"):
                if kind in kinds:
                    return _API_STATUS[kind]
        if errors == 0:
            return ("Cancelled", "Cancelled")
        return ("Success", "Incomplete")


def runs_of(backend: Any) -> dict[str, CommandRun]:
    """The runs kept on a moto SSM backend, created on first use (moto's reset clears its ``__dict__``)."""
    runs: dict[str, CommandRun] | None = getattr(backend, "localaws_runs", None)
    if runs is None:
        runs = {}
        backend.localaws_runs = runs
    return runs
