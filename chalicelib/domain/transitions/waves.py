"""The transitions of a rollout in waves (`Deployment.rollout`, planned by domain/rollout.py), while IN_PROGRESS:

    PENDING --wave_sent--> IN_PROGRESS/WAVE --wave_passed--> BAKING --wave_sent--> WAVE ... BAKING --succeeded-->
    WAVE | BAKING --rollout_halted--> STOPPING --rollback_sent--> ROLLING_BACK --rolled_back--> ROLLED_BACK
    STOPPING --rolled_back--> ROLLED_BACK (no instance had started the new revision)

Behind a load balancer (domain/draining.py) each batch is drained before its wave and registered after it:

    PENDING | BAKING --batch_draining--> DRAINING --batch_deregistered--> DRAINING --wave_sent--> WAVE
    WAVE --batch_swapped--> REGISTERING --batch_registered--> REGISTERING --batch_healthy--> BAKING
    DRAINING | REGISTERING --rollout_halted--> STOPPING --batch_registered--> STOPPING (the batch back in its groups)

A batch that would leave a group with no healthy target is swapped in place: `wave_sent(in_place=True)` from PENDING or
BAKING, then `wave_passed` as any wave. `rollback_sent` and `rolled_back` are refused while a batch is out of its
groups: nothing ends with instances deregistered.

`succeeded` is in deployment.py, with the end of a deployment sent all at once.
"""

from __future__ import annotations

from datetime import datetime

from ..deployment import Attempt, Decision, Deployment
from ..errors import IllegalTransition
from ..rollout import Rollout, RolloutPhase
from .common import IN_PROGRESS, PENDING, ROLLED_BACK, bounded, ended, revalidated, rollout_in, state_of, with_last
from .release import release_done


def _next_batch(d: Deployment, event: str, plan: Rollout | None) -> Rollout:
    """The rollout moved on to its next wave: the first (PENDING, with the `plan`), or the next once the last one has
    baked."""
    first = d.status == PENDING or (d.status == IN_PROGRESS and release_done(d))
    if first and plan is not None and d.rollout is None and not d.attempts and plan.waves:
        return plan.model_copy(update={"wave": 1})
    current = rollout_in(d, event, (RolloutPhase.BAKING,))
    if plan is not None or current.last_wave:
        raise IllegalTransition(d.deployment_id, state_of(d), event)
    return current.model_copy(update={"wave": current.wave + 1})


_NEW_BATCH = {"baking_since": None, "out_of_groups": False, "elb_done_at": None, "drain_seconds": 0,
              "healthy_within": 0, "in_place": False}


def wave_sent(d: Deployment, at: datetime, plan: Rollout | None = None, in_place: bool = False) -> Deployment:
    """The next wave's attempt is claimed, saved before its SendCommand: the first (PENDING, with the `plan`), the
    next once the last one has baked, or a drained batch's. `in_place`: a batch behind a load balancer swapped without
    deregistering (it would have left a group with no healthy target), said so in the history."""
    history = d.history
    if d.rollout is not None and d.rollout.phase == RolloutPhase.DRAINING:
        rollout = d.rollout
        if plan is not None or in_place or rollout.elb_done_at is None:
            raise IllegalTransition(d.deployment_id, state_of(d), "wave_sent")
        rollout = rollout.model_copy(update={"phase": RolloutPhase.WAVE})
    else:
        rollout = _next_batch(d, "wave_sent", plan).model_copy(
            update={**_NEW_BATCH, "phase": RolloutPhase.WAVE, "in_place": in_place})
        if in_place:
            history = [*history, Decision(at=at, action="in-place", detail=(
                f"{rollout.describe()}: swapped in place, not deregistered: taking it out would leave a target group "
                "with no healthy target; the on-host swap keeps the old container serving until the new one is "
                "healthy"))]
    attempt = Attempt(number=len(d.attempts) + 1, started_at=at, expected_instances=rollout.waves[rollout.wave - 1],
                      sends=1, sent_at=at, wave=rollout.wave)
    return revalidated(d, status=IN_PROGRESS, rollout=rollout, attempts=[*d.attempts, attempt], updated_at=at,
                       history=history)


def batch_draining(d: Deployment, at: datetime, plan: Rollout | None = None) -> Deployment:
    """The next batch is taken out of its target groups: saved before DeregisterTargets, so a batch that may be out
    is always known (and registered again before the deployment ends)."""
    rollout = _next_batch(d, "batch_draining", plan).model_copy(
        update={**_NEW_BATCH, "phase": RolloutPhase.DRAINING, "out_of_groups": True})
    batch = rollout.waves[rollout.wave - 1]
    return revalidated(d, status=IN_PROGRESS, rollout=rollout, updated_at=at, history=[*d.history, Decision(
        at=at, action="draining", detail=f"{rollout.describe()}: deregistering {len(batch)} instances: "
                                         + ", ".join(batch[:20]) + (" ..." if len(batch) > 20 else ""))])


def batch_deregistered(d: Deployment, drain_seconds: int, at: datetime) -> Deployment:
    """DeregisterTargets was answered: the batch drains from now, for at most `drain_seconds`."""
    rollout = rollout_in(d, "batch_deregistered", (RolloutPhase.DRAINING,))
    if rollout.elb_done_at is not None:
        raise IllegalTransition(d.deployment_id, state_of(d), "batch_deregistered")
    return revalidated(d, updated_at=at, rollout=rollout.model_copy(update={"elb_done_at": at,
                                                                           "drain_seconds": drain_seconds}))


def batch_swapped(d: Deployment, summary: str, at: datetime) -> Deployment:
    """A drained batch's command is over within its error budget: it is registered again (saved before
    RegisterTargets)."""
    rollout = rollout_in(d, "batch_swapped", (RolloutPhase.WAVE,))
    if not rollout.out_of_groups:
        raise IllegalTransition(d.deployment_id, state_of(d), "batch_swapped")
    attempt = revalidated(bounded(d.attempts[-1]), ended_at=at, outcome="succeeded")
    return revalidated(d, attempts=with_last(d, attempt), updated_at=at,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.REGISTERING, "elb_done_at": None}),
                       history=[*d.history, Decision(at=at, action="wave-passed",
                                                     detail=f"{rollout.describe()}: {summary}; registering")])


def batch_registered(d: Deployment, healthy_within: int, at: datetime) -> Deployment:
    """RegisterTargets was answered: the batch is back in its groups. While REGISTERING it has `healthy_within`
    seconds from now to become healthy; while STOPPING (halted with the batch out) the rollback may follow."""
    rollout = rollout_in(d, "batch_registered", (RolloutPhase.REGISTERING, RolloutPhase.STOPPING))
    if not rollout.out_of_groups:
        raise IllegalTransition(d.deployment_id, state_of(d), "batch_registered")
    update: dict[str, object] = {"out_of_groups": False}
    if rollout.phase == RolloutPhase.REGISTERING:
        update |= {"elb_done_at": at, "healthy_within": healthy_within}
    return revalidated(d, updated_at=at, rollout=rollout.model_copy(update=update), history=[*d.history, Decision(
        at=at, action="registered", detail=f"{rollout.describe()}: registered again in the target groups")])


def batch_healthy(d: Deployment, summary: str, at: datetime) -> Deployment:
    """Every target of the registered batch is healthy in every group (or the failed ones are within max_errors): it
    bakes from now."""
    rollout = rollout_in(d, "batch_healthy", (RolloutPhase.REGISTERING,))
    if rollout.out_of_groups or rollout.elb_done_at is None:
        raise IllegalTransition(d.deployment_id, state_of(d), "batch_healthy")
    return revalidated(d, updated_at=at,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.BAKING, "baking_since": at}),
                       history=[*d.history, Decision(at=at, action="healthy",
                                                     detail=f"{rollout.describe()}: {summary}; baking")])


def wave_passed(d: Deployment, summary: str, at: datetime) -> Deployment:
    """The wave's command is over within its error budget: it bakes from now (a drained batch is registered first:
    batch_swapped)."""
    rollout = rollout_in(d, "wave_passed", (RolloutPhase.WAVE,))
    if rollout.out_of_groups:
        raise IllegalTransition(d.deployment_id, state_of(d), "wave_passed")
    attempt = revalidated(bounded(d.attempts[-1]), ended_at=at, outcome="succeeded")
    return revalidated(d, attempts=with_last(d, attempt), updated_at=at,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.BAKING, "baking_since": at}),
                       history=[*d.history, Decision(at=at, action="wave-passed",
                                                     detail=f"{rollout.describe()}: {summary}; baking")])


def rollout_halted(d: Deployment, reason: str, cause: str, at: datetime) -> Deployment:
    """An alarm fired or a wave failed: nothing more of the new revision is sent. A wave still out is cancelled and
    its results read before a rollback is sent, so no instance ever runs two of berth's commands at once."""
    rollout = rollout_in(d, "rollout_halted", (RolloutPhase.WAVE, RolloutPhase.BAKING, RolloutPhase.DRAINING,
                                               RolloutPhase.REGISTERING))
    return revalidated(d, updated_at=at, message=reason,
                       rollout=rollout.model_copy(update={"phase": RolloutPhase.STOPPING, "stop_reason": reason}),
                       history=[*d.history, Decision(at=at, action="halted", cause=cause,
                                                     detail=f"{rollout.describe()}: {reason[:900]}")])


def rollback_sent(d: Deployment, instances: list[str], image: str, at: datetime) -> Deployment:
    """The rollback's attempt is claimed, saved before its SendCommand: `image` (the previous revision, pinned) to the
    instances that got the new one. The halted wave's attempt ends with the reason."""
    rollout = rollout_in(d, "rollback_sent", (RolloutPhase.STOPPING,))
    if not instances or rollout.out_of_groups:
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
    rollout = rollout_in(d, "rolled_back", (RolloutPhase.ROLLING_BACK, RolloutPhase.STOPPING))
    if rollout.out_of_groups:
        raise IllegalTransition(d.deployment_id, state_of(d), "rolled_back")
    return ended(d, ROLLED_BACK, message, at, [])
