"""The transitions of a rollout in waves (`Deployment.rollout`, planned by domain/rollout.py), while IN_PROGRESS:

    PENDING --wave_sent--> IN_PROGRESS/WAVE --wave_passed--> BAKING --wave_sent--> WAVE ... BAKING --succeeded-->
    WAVE | BAKING --rollout_halted--> STOPPING --rollback_sent--> ROLLING_BACK --rolled_back--> ROLLED_BACK
    STOPPING --rolled_back--> ROLLED_BACK (no instance had started the new revision)

`succeeded` is in deployment.py, with the end of a deployment sent all at once.
"""

from __future__ import annotations

from datetime import datetime

from ..deployment import Attempt, Decision, Deployment
from ..errors import IllegalTransition
from ..rollout import Rollout, RolloutPhase
from .common import IN_PROGRESS, PENDING, ROLLED_BACK, bounded, ended, revalidated, rollout_in, state_of, with_last


def wave_sent(d: Deployment, at: datetime, plan: Rollout | None = None) -> Deployment:
    """The next wave's attempt is claimed, saved before its SendCommand: the first (PENDING, with the `plan`), or the
    next once the last one has baked."""
    if d.status == PENDING and plan is not None and d.rollout is None and not d.attempts and plan.waves:
        rollout = plan.model_copy(update={"phase": RolloutPhase.WAVE, "wave": 1, "baking_since": None})
    else:
        current = rollout_in(d, "wave_sent", (RolloutPhase.BAKING,))
        if plan is not None or current.last_wave:
            raise IllegalTransition(d.deployment_id, state_of(d), "wave_sent")
        rollout = current.model_copy(update={"phase": RolloutPhase.WAVE, "wave": current.wave + 1,
                                             "baking_since": None})
    attempt = Attempt(number=len(d.attempts) + 1, started_at=at, expected_instances=rollout.waves[rollout.wave - 1],
                      sends=1, sent_at=at, wave=rollout.wave)
    return revalidated(d, status=IN_PROGRESS, rollout=rollout, attempts=[*d.attempts, attempt], updated_at=at)


def wave_passed(d: Deployment, summary: str, at: datetime) -> Deployment:
    """The wave's command is over within its error budget: it bakes from now."""
    rollout = rollout_in(d, "wave_passed", (RolloutPhase.WAVE,))
    attempt = revalidated(bounded(d.attempts[-1]), ended_at=at, outcome="succeeded")
    return revalidated(d, attempts=with_last(d, attempt), updated_at=at,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.BAKING, "baking_since": at}),
                       history=[*d.history, Decision(at=at, action="wave-passed",
                                                     detail=f"{rollout.describe()}: {summary}; baking")])


def rollout_halted(d: Deployment, reason: str, cause: str, at: datetime) -> Deployment:
    """An alarm fired or a wave failed: nothing more of the new revision is sent. A wave still out is cancelled and
    its results read before a rollback is sent, so no instance ever runs two of berth's commands at once."""
    rollout = rollout_in(d, "rollout_halted", (RolloutPhase.WAVE, RolloutPhase.BAKING))
    return revalidated(d, updated_at=at, message=reason,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.STOPPING, "stop_reason": reason}),
                       history=[*d.history, Decision(at=at, action="halted", cause=cause,
                                                     detail=f"{rollout.describe()}: {reason[:900]}")])


def rollback_sent(d: Deployment, instances: list[str], image: str, at: datetime) -> Deployment:
    """The rollback's attempt is claimed, saved before its SendCommand: `image` (the previous revision, pinned) to the
    instances that got the new one. The halted wave's attempt ends with the reason."""
    rollout = rollout_in(d, "rollback_sent", (RolloutPhase.STOPPING,))
    if not instances:
        raise IllegalTransition(d.deployment_id, state_of(d), "rollback_sent")
    attempts = d.attempts
    if attempts and attempts[-1].ended_at is None:
        attempts = with_last(d, revalidated(bounded(attempts[-1]), ended_at=at, outcome=rollout.stop_reason))
    attempt = Attempt(number=len(attempts) + 1, started_at=at, expected_instances=instances, sends=1, sent_at=at,
                      image=image)
    return revalidated(d, attempts=[*attempts, attempt], updated_at=at,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.ROLLING_BACK}),
                       history=[*d.history, Decision(at=at, action="rolling-back", cause=rollout.stop_reason or "",
                                                     detail=f"{image} to {len(instances)} instances: "
                                                            + ", ".join(instances[:20])
                                                            + (" ..." if len(instances) > 20 else ""))])


def rolled_back(d: Deployment, message: str, at: datetime) -> Deployment:
    """The instances that got the new revision run the previous one again (or none had started it). Final."""
    rollout_in(d, "rolled_back", (RolloutPhase.ROLLING_BACK, RolloutPhase.STOPPING))
    return ended(d, ROLLED_BACK, message, at, [])
