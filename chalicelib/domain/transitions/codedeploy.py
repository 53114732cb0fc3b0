"""The transitions of a CodeDeployRecord, in phases read from its `decided` and `retried_as`:

    RECORDING --decision_claimed--> DECIDED --retry_claimed--> CREATING --retried--> RETRIED

State events and lineage are recorded in any phase; gave_up from any phase but RETRIED.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from ..deployment import CodeDeployRecord, Decision
from ..errors import IllegalTransition
from .common import revalidated


class CodeDeployPhase(StrEnum):
    RECORDING = "RECORDING"  # events recorded; no FAILURE acted on
    DECIDED = "DECIDED"      # a FAILURE was acted on: a retry scheduled, or given up
    CREATING = "CREATING"    # the retry's CreateDeployment is claimed ("pending"); its id not known yet
    RETRIED = "RETRIED"      # the retry deployment exists


def codedeploy_phase(record: CodeDeployRecord) -> CodeDeployPhase:
    if record.retried_as == "pending":
        return CodeDeployPhase.CREATING
    if record.retried_as is not None:
        return CodeDeployPhase.RETRIED
    return CodeDeployPhase.DECIDED if record.decided else CodeDeployPhase.RECORDING


def _require_cd(record: CodeDeployRecord, event: str, allowed: Iterable[CodeDeployPhase]) -> None:
    phase = codedeploy_phase(record)
    if phase not in allowed:
        raise IllegalTransition(record.deployment_id, phase.value, event)


def lineage_found(record: CodeDeployRecord, lineage: str, attempt: int) -> CodeDeployRecord:
    """berth created this deployment as a retry: its attempt counts along the original's lineage (any phase)."""
    return revalidated(record, lineage=lineage, attempt=attempt)


def decision_claimed(record: CodeDeployRecord) -> CodeDeployRecord:
    """A FAILURE is acted on exactly once: the claim is saved (version-checked) before anything is done."""
    _require_cd(record, "decision_claimed", (CodeDeployPhase.RECORDING,))
    return revalidated(record, decided=True)


def codedeploy_retry_scheduled(record: CodeDeployRecord, remediation_commands: list[str], detail: str, cause: str,
                               at: datetime) -> CodeDeployRecord:
    _require_cd(record, "retry_scheduled", (CodeDeployPhase.DECIDED,))
    return revalidated(record, remediation_commands=remediation_commands, history=[
        *record.history, Decision(at=at, action="retry-scheduled", detail=detail, cause=cause)])


def codedeploy_gave_up(record: CodeDeployRecord, reason: str, cause: str, at: datetime) -> CodeDeployRecord:
    _require_cd(record, "gave_up", (CodeDeployPhase.RECORDING, CodeDeployPhase.DECIDED, CodeDeployPhase.CREATING))
    return revalidated(record, history=[*record.history, Decision(at=at, action="gave-up", detail=reason, cause=cause)])


def retry_claimed(record: CodeDeployRecord) -> CodeDeployRecord:
    """The retry's CreateDeployment is claimed before it is made: never two."""
    _require_cd(record, "retry_claimed", (CodeDeployPhase.RECORDING, CodeDeployPhase.DECIDED))
    return revalidated(record, retried_as="pending")


def retry_unanswered(record: CodeDeployRecord, detail: str, cause: str, at: datetime) -> CodeDeployRecord:
    _require_cd(record, "retry_unanswered", (CodeDeployPhase.CREATING,))
    return revalidated(record, history=[*record.history, Decision(at=at, action="retry-unanswered", cause=cause,
                                                                  detail=detail)])


def retried(record: CodeDeployRecord, new_id: str, cause: str, at: datetime) -> CodeDeployRecord:
    _require_cd(record, "retried", (CodeDeployPhase.CREATING,))
    return revalidated(record, retried_as=new_id, history=[
        *record.history, Decision(at=at, action="retried", detail=f"new deployment {new_id}", cause=cause)])
