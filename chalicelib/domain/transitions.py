"""The deployment's state machine: every change to a Deployment or a CodeDeployRecord, as a pure function.

Each transition takes the record (and what happened, with `at`), checks that the move is legal from the record's
state, and returns the next record, validated again as a whole (pydantic does not validate `model_copy(update=)`).
An illegal move raises IllegalTransition(deployment_id, state, event). Services load, call one transition and persist
with the condition on the version they read. docs/architecture.md tables the states and the legal moves.

Deployment (`status`):

    PENDING --attempt_started--> IN_PROGRESS            (also RETRYING --attempt_started--> IN_PROGRESS)
    IN_PROGRESS: command_sent, send_unanswered, sent_again, progress_recorded, results_read, still_running
    IN_PROGRESS --retry_scheduled--> RETRYING
    IN_PROGRESS --succeeded--> SUCCEEDED
    PENDING | IN_PROGRESS | RETRYING --failed / gave_up--> FAILED
    PENDING (no attempt) --abandoned--> FAILED
    PENDING | IN_PROGRESS | RETRYING --cancelled--> CANCELLED
    any --noted--> same (history only)

A rollout in waves (`rollout`, see rollout.py) moves through phases while IN_PROGRESS:

    PENDING --wave_sent--> IN_PROGRESS/WAVE --wave_passed--> BAKING --wave_sent--> WAVE ... BAKING --succeeded-->
    WAVE | BAKING --rollout_halted--> STOPPING --rollback_sent--> ROLLING_BACK --rolled_back--> ROLLED_BACK
    STOPPING --rolled_back--> ROLLED_BACK (no instance had started the new revision)

CodeDeploy record (`codedeploy_phase`): RECORDING --decision_claimed--> DECIDED --retry_claimed--> CREATING
--retried--> RETRIED; state events and lineage are recorded in any phase; gave_up from any phase but RETRIED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

from .deployment import (
    Attempt,
    CodeDeployRecord,
    Decision,
    Deployment,
    DeploymentStatus,
    InstanceResult,
    Tally,
)
from .errors import IllegalTransition
from .progress import keep_tails
from .retry import Retry
from .rollout import Rollout, RolloutPhase

PENDING = DeploymentStatus.PENDING
IN_PROGRESS = DeploymentStatus.IN_PROGRESS
RETRYING = DeploymentStatus.RETRYING
SUCCEEDED = DeploymentStatus.SUCCEEDED
FAILED = DeploymentStatus.FAILED
CANCELLED = DeploymentStatus.CANCELLED
ROLLED_BACK = DeploymentStatus.ROLLED_BACK
OPEN = frozenset({PENDING, IN_PROGRESS, RETRYING})

M = TypeVar("M", bound=BaseModel)


def _next(model: M, **changes: Any) -> M:
    """The model with `changes`, validated again as a whole."""
    return type(model).model_validate({**dict(model), **changes})


def _require(d: Deployment, event: str, allowed: Iterable[DeploymentStatus]) -> None:
    """Refuse the move unless the deployment's status allows it."""
    if d.status not in allowed:
        raise IllegalTransition(d.deployment_id, d.status.value, event)


def _attempt(d: Deployment, event: str, allowed: Iterable[DeploymentStatus]) -> Attempt:
    """Refuse the move unless the status allows it and the deployment has an attempt; its last attempt."""
    _require(d, event, allowed)
    if not d.attempts or (d.rollout is not None and d.rollout.phase == RolloutPhase.BAKING):
        raise IllegalTransition(d.deployment_id, _state(d), event)
    return d.attempts[-1]


def _state(d: Deployment) -> str:
    """The state a refusal names: the status, and the rollout's phase while a rollout in waves is in progress."""
    if d.rollout is not None and d.status == IN_PROGRESS:
        return f"{d.status.value}/{d.rollout.phase.value}"
    return d.status.value


def _in_phase(d: Deployment, event: str, phases: Iterable[RolloutPhase]) -> Rollout:
    if d.status != IN_PROGRESS or d.rollout is None or d.rollout.phase not in phases:
        raise IllegalTransition(d.deployment_id, _state(d), event)
    return d.rollout


def _with_last(d: Deployment, attempt: Attempt) -> list[Attempt]:
    return [*d.attempts[:-1], attempt]


def bounded(attempt: Attempt) -> Attempt:
    """The attempt as the record keeps it, once its results have been used (see keep_tails)."""
    return _next(attempt, instances=keep_tails(attempt.instances))


# Deployment -----------------------------------------------------------------------------------------------------
def attempt_started(d: Deployment, expected_instances: list[str], at: datetime) -> Deployment:
    """A new attempt is claimed, its first SendCommand try saved before it is made."""
    _require(d, "attempt_started", (PENDING, RETRYING))
    attempt = Attempt(number=len(d.attempts) + 1, started_at=at, expected_instances=expected_instances, sends=1,
                      sent_at=at)
    return _next(d, attempts=[*d.attempts, attempt], status=IN_PROGRESS, updated_at=at)


def command_sent(d: Deployment, command_id: str, cause: str, at: datetime) -> Deployment:
    """The attempt's command is known (SendCommand's answer, or found by its comment)."""
    attempt = _attempt(d, "command_sent", (IN_PROGRESS,))
    sent = _next(attempt, command_id=command_id)
    what = f"attempt {sent.number}"
    if d.rollout is not None and sent.wave is not None:
        what += f", wave {sent.wave} of {len(d.rollout.waves)}"
    elif sent.image is not None:
        what += f", rollback to {sent.image}"
    return _next(d, attempts=_with_last(d, sent), updated_at=at, history=[*d.history, Decision(
        at=at, action="dispatched", cause=cause,
        detail=f"{what}: SSM command {command_id} to {len(sent.expected_instances)} instances")])


def send_unanswered(d: Deployment, error: str, unsent_after_seconds: int, cause: str, at: datetime) -> Deployment:
    """SendCommand got no answer and no command carries the try's comment yet."""
    attempt = _attempt(d, "send_unanswered", (IN_PROGRESS,))
    return _next(d, updated_at=at, history=[*d.history, Decision(
        at=at, action="send-unanswered", cause=cause,
        detail=f"attempt {attempt.number}: {error}. No command carries its comment yet: it is looked for on each "
               f"refresh, and sent again only if none appears within {unsent_after_seconds} s")])


def sent_again(d: Deployment, at: datetime) -> Deployment:
    """No command carried the attempt's comment for long enough: a new try of the attempt is saved before it is made."""
    attempt = _attempt(d, "sent_again", (IN_PROGRESS,))
    if attempt.command_id is not None:
        raise IllegalTransition(d.deployment_id, d.status.value, "sent_again")
    again = _next(attempt, sends=max(attempt.sends, 1) + 1, sent_at=at)
    return _next(d, attempts=_with_last(d, again), updated_at=at)


def progress_recorded(d: Deployment, tally: Tally, at: datetime) -> Deployment:
    """SSM's counts while the command runs."""
    attempt = _attempt(d, "progress_recorded", (IN_PROGRESS,))
    return _next(d, attempts=_with_last(d, _next(attempt, tally=tally)), updated_at=at)


def results_read(d: Deployment, instances: Mapping[str, InstanceResult], tally: Tally) -> Deployment:
    """Every instance's result, read once the command is over (in full: the next transition bounds them)."""
    attempt = _attempt(d, "results_read", (IN_PROGRESS,))
    return _next(d, attempts=_with_last(d, _next(attempt, instances=dict(instances), tally=tally)))


def still_running(d: Deployment, at: datetime) -> Deployment:
    """The results read say the deployment goes on: they are kept bounded."""
    attempt = _attempt(d, "still_running", (IN_PROGRESS,))
    return _next(d, attempts=_with_last(d, bounded(attempt)), updated_at=at)


def _ended(d: Deployment, status: DeploymentStatus, message: str, at: datetime,
           decisions: list[Decision], **changes: Any) -> Deployment:
    attempts = d.attempts
    # A wave that passed, or one stopped and read, ended when it did: its end is not the deployment's.
    if attempts and not (d.rollout is not None and attempts[-1].ended_at is not None):
        outcome = "succeeded" if status == SUCCEEDED else message
        attempts = _with_last(d, _next(bounded(attempts[-1]), ended_at=at, outcome=outcome))
    return _next(d, status=status, attempts=attempts, updated_at=at, message=message, history=[
        *d.history, *decisions, Decision(at=at, action=status.value.lower(), detail=message[:1000])], **changes)


def succeeded(d: Deployment, message: str, digests: set[str], at: datetime) -> Deployment:
    """Every instance runs the revision. An unpinned revision is pinned to the one digest they all report. A rollout in
    waves succeeds once its last wave has baked."""
    if d.rollout is not None:
        rollout = _in_phase(d, "succeeded", (RolloutPhase.BAKING,))
        if not rollout.last_wave:
            raise IllegalTransition(d.deployment_id, _state(d), "succeeded")
    else:
        _attempt(d, "succeeded", (IN_PROGRESS,))
    revision = d.revision
    if revision.digest is None and len(digests) == 1:
        revision = _next(revision, digest=next(iter(digests)))
    return _ended(d, SUCCEEDED, message, at, [], revision=revision)


def failed(d: Deployment, message: str, at: datetime) -> Deployment:
    """The deployment failed (nothing could be sent, or the last attempt failed with no retry to follow)."""
    _require(d, "failed", OPEN)
    return _ended(d, FAILED, message, at, [])


def gave_up(d: Deployment, message: str, reason: str, cause: str, at: datetime) -> Deployment:
    """Failed, and no retry follows (retries exhausted or refused, or the target moved on)."""
    _require(d, "gave_up", OPEN)
    return _ended(d, FAILED, message, at,
                  [Decision(at=at, action="gave-up", detail=reason, cause=cause)])


ABANDONED = "abandoned: the request that started it failed before any command was sent"


def abandoned(d: Deployment, at: datetime) -> Deployment:
    """Recorded, but its starter failed before its first attempt was saved, and no pipeline job resumes it."""
    if d.status != PENDING or d.attempts:
        raise IllegalTransition(d.deployment_id, d.status.value, "abandoned")
    return _ended(d, FAILED, ABANDONED, at, [])


def retry_scheduled(d: Deployment, failure: str, retry: Retry, schedule: str, cause: str, at: datetime
                    ) -> Deployment:
    """The attempt failed and the next one is scheduled: the deployment stays open, holding its target."""
    attempt = _attempt(d, "retry_scheduled", (IN_PROGRESS,))
    if d.rollout is not None:       # a failed wave halts and rolls back: never retried
        raise IllegalTransition(d.deployment_id, _state(d), "retry_scheduled")
    ended = _next(bounded(attempt), ended_at=at, outcome=failure)
    return _next(d, status=RETRYING, attempts=_with_last(d, ended), updated_at=at,
                 message=f"attempt {attempt.number} failed; attempt {retry.attempt} scheduled at {retry.at:%H:%M:%S}Z",
                 history=[*d.history, Decision(
                     at=at, action="retry-scheduled", cause=cause,
                     detail=f"attempt {retry.attempt} at {retry.at.isoformat()} (in {retry.delay_seconds:.0f}s, "
                            f"schedule {schedule}): {retry.reason}")])


def cancelled(d: Deployment, message: str, at: datetime) -> Deployment:
    """A person cancelled it; an attempt still out ends with the same message."""
    _require(d, "cancelled", OPEN)
    attempts = d.attempts
    if attempts and attempts[-1].ended_at is None:
        attempts = _with_last(d, _next(attempts[-1], ended_at=at, outcome=message))
    return _next(d, status=CANCELLED, attempts=attempts, updated_at=at, message=message,
                 history=[*d.history, Decision(at=at, action="cancelled", detail=message[:1000], cause="api")])


def noted(d: Deployment, notes: Iterable[tuple[str, str]], cause: str, at: datetime) -> Deployment:
    """Why and how the deployment was asked for, in its history; its state does not change (any status)."""
    return _next(d, history=[*d.history, *(Decision(at=at, action=action, detail=detail[:1000], cause=cause)
                                           for action, detail in notes)])


# A rollout in waves ------------------------------------------------------------------------------------------------
def wave_sent(d: Deployment, at: datetime, plan: Rollout | None = None) -> Deployment:
    """The next wave's attempt is claimed, saved before its SendCommand: the first (PENDING, with the `plan`), or the
    next once the last one has baked."""
    if d.status == PENDING and plan is not None and d.rollout is None and not d.attempts and plan.waves:
        rollout = plan.model_copy(update={"phase": RolloutPhase.WAVE, "wave": 1, "baking_since": None})
    else:
        current = _in_phase(d, "wave_sent", (RolloutPhase.BAKING,))
        if plan is not None or current.last_wave:
            raise IllegalTransition(d.deployment_id, _state(d), "wave_sent")
        rollout = current.model_copy(update={"phase": RolloutPhase.WAVE, "wave": current.wave + 1,
                                             "baking_since": None})
    attempt = Attempt(number=len(d.attempts) + 1, started_at=at, expected_instances=rollout.waves[rollout.wave - 1],
                      sends=1, sent_at=at, wave=rollout.wave)
    return _next(d, status=IN_PROGRESS, rollout=rollout, attempts=[*d.attempts, attempt], updated_at=at)


def wave_passed(d: Deployment, summary: str, at: datetime) -> Deployment:
    """The wave's command is over within its error budget: it bakes from now."""
    rollout = _in_phase(d, "wave_passed", (RolloutPhase.WAVE,))
    attempt = _next(bounded(d.attempts[-1]), ended_at=at, outcome="succeeded")
    return _next(d, attempts=_with_last(d, attempt), updated_at=at,
                 rollout=rollout.model_copy(update={"phase": RolloutPhase.BAKING, "baking_since": at}),
                 history=[*d.history, Decision(at=at, action="wave-passed",
                                               detail=f"{rollout.describe()}: {summary}; baking")])


def rollout_halted(d: Deployment, reason: str, cause: str, at: datetime) -> Deployment:
    """An alarm fired or a wave failed: nothing more of the new revision is sent. A wave still out is cancelled and
    its results read before a rollback is sent, so no instance ever runs two of berth's commands at once."""
    rollout = _in_phase(d, "rollout_halted", (RolloutPhase.WAVE, RolloutPhase.BAKING))
    return _next(d, updated_at=at, message=reason,
                 rollout=rollout.model_copy(update={"phase": RolloutPhase.STOPPING, "stop_reason": reason}),
                 history=[*d.history, Decision(at=at, action="halted", detail=f"{rollout.describe()}: {reason[:900]}",
                                               cause=cause)])


def rollback_sent(d: Deployment, instances: list[str], image: str, at: datetime) -> Deployment:
    """The rollback's attempt is claimed, saved before its SendCommand: `image` (the previous revision, pinned) to the
    instances that got the new one. The halted wave's attempt ends with the reason."""
    rollout = _in_phase(d, "rollback_sent", (RolloutPhase.STOPPING,))
    if not instances:
        raise IllegalTransition(d.deployment_id, _state(d), "rollback_sent")
    attempts = d.attempts
    if attempts and attempts[-1].ended_at is None:
        attempts = _with_last(d, _next(bounded(attempts[-1]), ended_at=at, outcome=rollout.stop_reason))
    attempt = Attempt(number=len(attempts) + 1, started_at=at, expected_instances=instances, sends=1, sent_at=at,
                      image=image)
    return _next(d, attempts=[*attempts, attempt], updated_at=at,
                 rollout=rollout.model_copy(update={"phase": RolloutPhase.ROLLING_BACK}),
                 history=[*d.history, Decision(at=at, action="rolling-back", cause=rollout.stop_reason or "",
                                               detail=f"{image} to {len(instances)} instances: "
                                                      + ", ".join(instances[:20])
                                                      + (" ..." if len(instances) > 20 else ""))])


def rolled_back(d: Deployment, message: str, at: datetime) -> Deployment:
    """The instances that got the new revision run the previous one again (or none had started it). Final."""
    _in_phase(d, "rolled_back", (RolloutPhase.ROLLING_BACK, RolloutPhase.STOPPING))
    return _ended(d, ROLLED_BACK, message, at, [])


# CodeDeploy record ------------------------------------------------------------------------------------------------
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
    return _next(record, lineage=lineage, attempt=attempt)


def decision_claimed(record: CodeDeployRecord) -> CodeDeployRecord:
    """A FAILURE is acted on exactly once: the claim is saved (version-checked) before anything is done."""
    _require_cd(record, "decision_claimed", (CodeDeployPhase.RECORDING,))
    return _next(record, decided=True)


def codedeploy_retry_scheduled(record: CodeDeployRecord, remediation_commands: list[str], detail: str, cause: str,
                               at: datetime) -> CodeDeployRecord:
    _require_cd(record, "retry_scheduled", (CodeDeployPhase.DECIDED,))
    return _next(record, remediation_commands=remediation_commands, history=[
        *record.history, Decision(at=at, action="retry-scheduled", detail=detail, cause=cause)])


def codedeploy_gave_up(record: CodeDeployRecord, reason: str, cause: str, at: datetime) -> CodeDeployRecord:
    _require_cd(record, "gave_up", (CodeDeployPhase.RECORDING, CodeDeployPhase.DECIDED, CodeDeployPhase.CREATING))
    return _next(record, history=[*record.history, Decision(at=at, action="gave-up", detail=reason, cause=cause)])


def retry_claimed(record: CodeDeployRecord) -> CodeDeployRecord:
    """The retry's CreateDeployment is claimed before it is made: never two."""
    _require_cd(record, "retry_claimed", (CodeDeployPhase.RECORDING, CodeDeployPhase.DECIDED))
    return _next(record, retried_as="pending")


def retry_unanswered(record: CodeDeployRecord, detail: str, cause: str, at: datetime) -> CodeDeployRecord:
    _require_cd(record, "retry_unanswered", (CodeDeployPhase.CREATING,))
    return _next(record, history=[*record.history, Decision(at=at, action="retry-unanswered", cause=cause,
                                                            detail=detail)])


def retried(record: CodeDeployRecord, new_id: str, cause: str, at: datetime) -> CodeDeployRecord:
    _require_cd(record, "retried", (CodeDeployPhase.CREATING,))
    return _next(record, retried_as=new_id, history=[
        *record.history, Decision(at=at, action="retried", detail=f"new deployment {new_id}", cause=cause)])
