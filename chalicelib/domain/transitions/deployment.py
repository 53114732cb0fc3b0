"""The transitions of a Deployment sent with SSM Run Command: its attempts, their tries and results, and its end.

    PENDING --attempt_started--> IN_PROGRESS            (also RETRYING, and IN_PROGRESS once a release task passed)
    IN_PROGRESS: command_sent, send_unanswered, sent_again, progress_recorded, results_read, still_running
    IN_PROGRESS --retry_scheduled--> RETRYING
    IN_PROGRESS --succeeded--> SUCCEEDED
    PENDING | IN_PROGRESS | RETRYING --failed / gave_up--> FAILED
    PENDING (no attempt) --abandoned--> FAILED
    PENDING | IN_PROGRESS | RETRYING --cancelled--> CANCELLED
    any --noted--> same (history only)

`succeeded` also ends a rollout in waves once its last wave has baked (see waves.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from ..deployment import Attempt, Decision, Deployment, InstanceResult, Tally
from ..errors import IllegalTransition
from ..retry import Retry
from ..rollout import RolloutPhase
from .common import (
    CANCELLED,
    FAILED,
    IN_PROGRESS,
    OPEN,
    PENDING,
    RETRYING,
    SUCCEEDED,
    bounded,
    ended,
    last_attempt,
    require_status,
    revalidated,
    rollout_in,
    state_of,
    with_last,
)
from .release import release_done


def attempt_started(d: Deployment, expected_instances: list[str], at: datetime) -> Deployment:
    """A new attempt is claimed, its first SendCommand try saved before it is made."""
    if not (d.status in (PENDING, RETRYING) or (d.status == IN_PROGRESS and release_done(d))):
        raise IllegalTransition(d.deployment_id, state_of(d), "attempt_started")
    attempt = Attempt(number=len(d.attempts) + 1, started_at=at, expected_instances=expected_instances, sends=1,
                      sent_at=at)
    return revalidated(d, attempts=[*d.attempts, attempt], status=IN_PROGRESS, updated_at=at)


def command_sent(d: Deployment, command_id: str, cause: str, at: datetime) -> Deployment:
    """The attempt's command is known (SendCommand's answer, or found by its comment)."""
    attempt = last_attempt(d, "command_sent", (IN_PROGRESS,))
    sent = revalidated(attempt, command_id=command_id)
    what = f"attempt {sent.number}"
    if d.rollout is not None and sent.wave is not None:
        what += f", wave {sent.wave} of {len(d.rollout.waves)}"
    elif sent.image is not None:
        what += f", rollback to {sent.image}"
    return revalidated(d, attempts=with_last(d, sent), updated_at=at, history=[*d.history, Decision(
        at=at, action="dispatched", cause=cause,
        detail=f"{what}: SSM command {command_id} to {len(sent.expected_instances)} instances")])


def send_unanswered(d: Deployment, error: str, unsent_after_seconds: int, cause: str, at: datetime) -> Deployment:
    """SendCommand got no answer and no command carries the try's comment yet."""
    attempt = last_attempt(d, "send_unanswered", (IN_PROGRESS,))
    return revalidated(d, updated_at=at, history=[*d.history, Decision(
        at=at, action="send-unanswered", cause=cause,
        detail=f"attempt {attempt.number}: {error}. No command carries its comment yet: it is looked for on each "
               f"refresh, and sent again only if none appears within {unsent_after_seconds} s")])


def sent_again(d: Deployment, at: datetime) -> Deployment:
    """No command carried the attempt's comment for long enough: a new try of the attempt is saved before it is made."""
    attempt = last_attempt(d, "sent_again", (IN_PROGRESS,))
    if attempt.command_id is not None:
        raise IllegalTransition(d.deployment_id, d.status.value, "sent_again")
    again = revalidated(attempt, sends=max(attempt.sends, 1) + 1, sent_at=at)
    return revalidated(d, attempts=with_last(d, again), updated_at=at)


def progress_recorded(d: Deployment, tally: Tally, at: datetime) -> Deployment:
    """SSM's counts while the command runs."""
    attempt = last_attempt(d, "progress_recorded", (IN_PROGRESS,))
    return revalidated(d, attempts=with_last(d, revalidated(attempt, tally=tally)), updated_at=at)


def results_read(d: Deployment, instances: Mapping[str, InstanceResult], tally: Tally) -> Deployment:
    """Every instance's result, read once the command is over (in full: the next transition bounds them)."""
    attempt = last_attempt(d, "results_read", (IN_PROGRESS,))
    return revalidated(d, attempts=with_last(d, revalidated(attempt, instances=dict(instances), tally=tally)))


def still_running(d: Deployment, at: datetime) -> Deployment:
    """The results read say the deployment goes on: they are kept bounded."""
    attempt = last_attempt(d, "still_running", (IN_PROGRESS,))
    return revalidated(d, attempts=with_last(d, bounded(attempt)), updated_at=at)


def succeeded(d: Deployment, message: str, digests: set[str], at: datetime) -> Deployment:
    """Every instance runs the revision. An unpinned revision is pinned to the one digest they all report. A rollout in
    waves succeeds once its last wave has baked."""
    if d.rollout is not None:
        rollout = rollout_in(d, "succeeded", (RolloutPhase.BAKING,))
        if not rollout.last_wave:
            raise IllegalTransition(d.deployment_id, state_of(d), "succeeded")
    else:
        last_attempt(d, "succeeded", (IN_PROGRESS,))
    revision = d.revision
    if revision.digest is None and len(digests) == 1:
        revision = revalidated(revision, digest=next(iter(digests)))
    return ended(d, SUCCEEDED, message, at, [], revision=revision)


def failed(d: Deployment, message: str, at: datetime) -> Deployment:
    """The deployment failed (nothing could be sent, or the last attempt failed with no retry to follow)."""
    require_status(d, "failed", OPEN)
    return ended(d, FAILED, message, at, [])


def gave_up(d: Deployment, message: str, reason: str, cause: str, at: datetime) -> Deployment:
    """Failed, and no retry follows (retries exhausted or refused, or the target moved on)."""
    require_status(d, "gave_up", OPEN)
    return ended(d, FAILED, message, at,
                 [Decision(at=at, action="gave-up", detail=reason, cause=cause)])


ABANDONED = "abandoned: the request that started it failed before any command was sent"


def abandoned(d: Deployment, at: datetime) -> Deployment:
    """Recorded, but its starter failed before its first attempt was saved, and no pipeline job resumes it."""
    if d.status != PENDING or d.attempts:
        raise IllegalTransition(d.deployment_id, d.status.value, "abandoned")
    return ended(d, FAILED, ABANDONED, at, [])


def retry_scheduled(d: Deployment, failure: str, retry: Retry, schedule: str, cause: str, at: datetime
                    ) -> Deployment:
    """The attempt failed and the next one is scheduled: the deployment stays open, holding its target."""
    attempt = last_attempt(d, "retry_scheduled", (IN_PROGRESS,))
    if d.rollout is not None:       # a failed wave halts and rolls back: never retried
        raise IllegalTransition(d.deployment_id, state_of(d), "retry_scheduled")
    failed_attempt = revalidated(bounded(attempt), ended_at=at, outcome=failure)
    return revalidated(
        d, status=RETRYING, attempts=with_last(d, failed_attempt), updated_at=at,
        message=f"attempt {attempt.number} failed; attempt {retry.attempt} scheduled at {retry.at:%H:%M:%S}Z",
        history=[*d.history, Decision(
            at=at, action="retry-scheduled", cause=cause,
            detail=f"attempt {retry.attempt} at {retry.at.isoformat()} (in {retry.delay_seconds:.0f}s, "
                   f"schedule {schedule}): {retry.reason}")])


def cancelled(d: Deployment, message: str, at: datetime) -> Deployment:
    """A person cancelled it; an attempt still out ends with the same message."""
    require_status(d, "cancelled", OPEN)
    attempts = d.attempts
    if attempts and attempts[-1].ended_at is None:
        attempts = with_last(d, revalidated(attempts[-1], ended_at=at, outcome=message))
    return revalidated(d, status=CANCELLED, attempts=attempts, updated_at=at, message=message,
                       history=[*d.history, Decision(at=at, action="cancelled", detail=message[:1000], cause="api")])


def noted(d: Deployment, notes: Iterable[tuple[str, str]], cause: str, at: datetime) -> Deployment:
    """Why and how the deployment was asked for, in its history; its state does not change (any status)."""
    return revalidated(d, history=[*d.history, *(Decision(at=at, action=action, detail=detail[:1000], cause=cause)
                                                 for action, detail in notes)])
