"""What the transitions of a Deployment share: the statuses they name, the checks that refuse an illegal move, and
the building of the next record (validated again as a whole: pydantic does not validate `model_copy(update=)`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from ..deployment import Attempt, Decision, Deployment, DeploymentStatus
from ..errors import IllegalTransition
from ..progress import keep_tails
from ..rollout import Rollout, RolloutPhase

PENDING = DeploymentStatus.PENDING
IN_PROGRESS = DeploymentStatus.IN_PROGRESS
RETRYING = DeploymentStatus.RETRYING
SUCCEEDED = DeploymentStatus.SUCCEEDED
FAILED = DeploymentStatus.FAILED
CANCELLED = DeploymentStatus.CANCELLED
ROLLED_BACK = DeploymentStatus.ROLLED_BACK
OPEN = frozenset({PENDING, IN_PROGRESS, RETRYING})
# The phases of a rollout in waves with no command of berth's out.
NO_COMMAND_OUT = frozenset({RolloutPhase.BAKING, RolloutPhase.DRAINING, RolloutPhase.REGISTERING})

M = TypeVar("M", bound=BaseModel)


def revalidated(model: M, **changes: Any) -> M:
    """The model with `changes`, validated again as a whole."""
    return type(model).model_validate({**dict(model), **changes})


def require_status(d: Deployment, event: str, allowed: Iterable[DeploymentStatus]) -> None:
    """Refuse the move unless the deployment's status allows it."""
    if d.status not in allowed:
        raise IllegalTransition(d.deployment_id, d.status.value, event)


def last_attempt(d: Deployment, event: str, allowed: Iterable[DeploymentStatus]) -> Attempt:
    """Refuse the move unless the status allows it and the deployment has an attempt; its last attempt."""
    require_status(d, event, allowed)
    if not d.attempts or (d.rollout is not None and d.rollout.phase in NO_COMMAND_OUT):
        raise IllegalTransition(d.deployment_id, state_of(d), event)
    return d.attempts[-1]


def state_of(d: Deployment) -> str:
    """The state a refusal names: the status, and the rollout's phase while a rollout in waves is in progress."""
    if d.rollout is not None and d.status == IN_PROGRESS:
        return f"{d.status.value}/{d.rollout.phase.value}"
    if d.release is not None and d.status in (PENDING, IN_PROGRESS):
        return f"{d.status.value}/{d.release.phase.value}"
    return d.status.value


def rollout_in(d: Deployment, event: str, phases: Iterable[RolloutPhase]) -> Rollout:
    """Refuse the move unless a rollout in waves is in progress in one of `phases`; the rollout."""
    if d.status != IN_PROGRESS or d.rollout is None or d.rollout.phase not in phases:
        raise IllegalTransition(d.deployment_id, state_of(d), event)
    return d.rollout


def with_last(d: Deployment, attempt: Attempt) -> list[Attempt]:
    return [*d.attempts[:-1], attempt]


def bounded(attempt: Attempt) -> Attempt:
    """The attempt as the record keeps it, once its results have been used (see keep_tails)."""
    return revalidated(attempt, instances=keep_tails(attempt.instances))


def ended(d: Deployment, status: DeploymentStatus, message: str, at: datetime,
          decisions: list[Decision], **changes: Any) -> Deployment:
    """The deployment in its final `status`: its last attempt ends with it, and the end is in its history."""
    attempts = d.attempts
    # A wave that passed, or one stopped and read, ended when it did: its end is not the deployment's.
    if attempts and not (d.rollout is not None and attempts[-1].ended_at is not None):
        outcome = "succeeded" if status == SUCCEEDED else message
        attempts = with_last(d, revalidated(bounded(attempts[-1]), ended_at=at, outcome=outcome))
    return revalidated(d, status=status, attempts=attempts, updated_at=at, message=message, history=[
        *d.history, *decisions, Decision(at=at, action=status.value.lower(), detail=message[:1000])], **changes)
