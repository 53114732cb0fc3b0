"""The transitions of a deployment's release task (domain/release.py has the states and their diagram)."""

from __future__ import annotations

from datetime import datetime

from ..deployment import Decision, Deployment
from ..errors import IllegalTransition
from ..release import ReleasePhase, ReleaseTask, failure_message, output_tail, release_due
from .common import FAILED, IN_PROGRESS, PENDING, ended, revalidated, state_of


def _releasing(d: Deployment, event: str) -> ReleaseTask:
    """Refuse the move unless the task is claimed or out; the task."""
    if d.status != IN_PROGRESS or d.release is None or d.release.phase != ReleasePhase.RELEASING:
        raise IllegalTransition(d.deployment_id, state_of(d), event)
    return d.release


def release_started(d: Deployment, instance_id: str, run_id: str, at: datetime) -> Deployment:
    """The task's first SendCommand try is claimed, saved before it is made: the deployment is IN_PROGRESS with no
    attempt, and no swap is sent until the task passes."""
    if d.status != PENDING or not release_due(d):
        raise IllegalTransition(d.deployment_id, state_of(d), "release_started")
    assert d.spec.release is not None
    task = ReleaseTask(command=list(d.spec.release.command), instance_id=instance_id, image=d.revision.pinned,
                       run_id=run_id, started_at=at, sends=1, sent_at=at)
    return revalidated(d, status=IN_PROGRESS, release=task, updated_at=at, history=[*d.history, Decision(
        at=at, action="release-started", detail=f"{task.describe()} on {instance_id} in {task.image}")])


def release_skipped(d: Deployment, ran_in: str, at: datetime) -> Deployment:
    """The task succeeded for this digest and command in deployment `ran_in`: not run again (still PENDING)."""
    if d.status != PENDING or not release_due(d):
        raise IllegalTransition(d.deployment_id, state_of(d), "release_skipped")
    assert d.spec.release is not None
    task = ReleaseTask(command=list(d.spec.release.command), phase=ReleasePhase.SKIPPED, image=d.revision.pinned,
                       ran_in=ran_in)
    return revalidated(d, release=task, updated_at=at, history=[*d.history, Decision(
        at=at, action="release-skipped",
        detail=f"{task.describe()} not run: it succeeded for {d.revision.pinned} in deployment {ran_in}")])


def release_sent(d: Deployment, command_id: str, cause: str, at: datetime) -> Deployment:
    """The task's command is known (SendCommand's answer, or found by its comment)."""
    task = _releasing(d, "release_sent")
    return revalidated(d, release=revalidated(task, command_id=command_id), updated_at=at, history=[
        *d.history, Decision(at=at, action="release-dispatched", cause=cause,
                             detail=f"{task.describe()}: SSM command {command_id} to {task.instance_id}")])


def release_unanswered(d: Deployment, error: str, cause: str, at: datetime) -> Deployment:
    """The task's SendCommand got no answer and no command carries its comment yet."""
    task = _releasing(d, "release_unanswered")
    return revalidated(d, updated_at=at, history=[*d.history, Decision(
        at=at, action="release-send-unanswered", cause=cause,
        detail=f"{task.describe()}: {error}. It is looked for by its comment on each refresh, and sent again only if "
               "none appears")])


def release_sent_again(d: Deployment, at: datetime) -> Deployment:
    """No command carried the task's comment for long enough: a new try is saved before it is made."""
    task = _releasing(d, "release_sent_again")
    if task.command_id is not None:
        raise IllegalTransition(d.deployment_id, state_of(d), "release_sent_again")
    return revalidated(d, release=revalidated(task, sends=task.sends + 1, sent_at=at), updated_at=at)


def release_passed(d: Deployment, output: str, at: datetime) -> Deployment:
    """The task exited 0: the rollout goes on (its first attempt or wave is claimed next)."""
    task = _releasing(d, "release_passed")
    if task.command_id is None:
        raise IllegalTransition(d.deployment_id, state_of(d), "release_passed")
    passed = revalidated(task, phase=ReleasePhase.RELEASED, ended_at=at, exit_code=0, status="Success",
                         output_tail=output_tail(output))
    return revalidated(d, release=passed, updated_at=at, history=[*d.history, Decision(
        at=at, action="release-passed", detail=f"{task.describe()} exited 0 on {task.instance_id}")])


def release_failed(d: Deployment, status: str, exit_code: int | None, output: str, at: datetime) -> Deployment:
    """The task failed (non-zero exit, timed out, never delivered) or could not be sent: the deployment fails, with
    nothing swapped."""
    task = _releasing(d, "release_failed")
    tail = output_tail(output)
    failed = revalidated(task, phase=ReleasePhase.FAILED, ended_at=at, exit_code=exit_code, status=status,
                         output_tail=tail)
    return ended(d, FAILED, failure_message(task, status, exit_code, tail), at, [], release=failed)


def release_done(d: Deployment) -> bool:
    """The task passed or was skipped, and nothing of the rollout is claimed yet: its first attempt or wave is next."""
    return d.release is not None and d.release.done and not d.attempts and d.rollout is None
