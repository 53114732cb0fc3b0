"""What a simulated managed instance does with a Run Command invocation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FINAL_STATUSES = ("Success", "Failed", "TimedOut", "DeliveryTimedOut", "Cancelled")


@dataclass(frozen=True)
class InstanceOutcome:
    """The final result one instance reports for a command.

    ``status`` is the outcome as a person would name it; ``DeliveryTimedOut`` is reported by the API as
    Status ``TimedOut`` with StatusDetails ``DeliveryTimedOut`` (and ``TimedOut`` as ``ExecutionTimedOut``).
    ``polls_before_done`` reads (GetCommandInvocation, ListCommandInvocations, or ListCommands returning
    its command) see ``InProgress`` first.
    ``skip`` makes the instance unmanaged: it never gets an invocation and is absent from
    DescribeInstanceInformation. ``not_found_reads`` models Run Command's eventual consistency: right after
    SendCommand, that many GetCommandInvocation calls raise ``InvocationDoesNotExist`` (and
    ListCommandInvocations leaves the invocation out) before it becomes visible.
    """

    status: str = "Success"
    response_code: int = 0
    stdout: str = ""
    stderr: str = ""
    polls_before_done: int = 0
    skip: bool = False
    not_found_reads: int = 0

    def __post_init__(self) -> None:
        if self.status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {self.status!r}")
        if self.polls_before_done < 0 or self.not_found_reads < 0:
            raise ValueError("polls_before_done and not_found_reads must be >= 0")

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the HTTP control endpoint."""
        return {
            "status": self.status,
            "response_code": self.response_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "polls_before_done": self.polls_before_done,
            "skip": self.skip,
            "not_found_reads": self.not_found_reads,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstanceOutcome:
        return cls(**data)


OutcomeHook = Callable[[str, dict[str, Any]], "InstanceOutcome | None"]
"""``fn(instance_id, command)`` consulted at send time before the configured outcomes."""
