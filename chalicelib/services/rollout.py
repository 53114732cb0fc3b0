"""Carrying out a rollout in waves: the alarms before the first wave, between and during waves, bakes, and rollback.

DeploymentService hands a deployment whose spec has `rollout.canary` or `rollout.alarms` to this module at four
points: before the target is taken (an alarm already in ALARM, or one that does not exist, refuses the start), when the
first attempt would be claimed (the waves are planned instead), on each refresh before SSM is asked about the command
(`watch`: the alarms, the bake clock, a halted wave), and once a wave's or a rollback's command is over
(`command_over`). Everything else (sending a try, finding an unrecorded send, reading the results) is the
DeploymentService's own, shared with a plain rollout.

Nothing waits: each refresh (a pipeline continuation, an SSM event, `GET /deployments/{id}`) reads the alarms once
(DescribeAlarms, up to 100 names a call) and acts on what the domain decides. An alarm in ALARM during a wave cancels
its command; the rollback is sent only once that command is over and its results read, so no instance ever runs two of
berth's commands at once. The target is held across the bake (the lock is pushed out to the bake's end), and before
each wave and the rollback it is held again, so a deployment the target moved on from never sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from copy import copy
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.adapters.cloudwatch import AlarmWatch
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import rollout as waves
from chalicelib.domain import transitions
from chalicelib.domain.deployment import Deployment, DeploymentStatus
from chalicelib.domain.errors import AlarmFiring, AwsCallFailed, InvalidRevision
from chalicelib.domain.progress import Phase, Progress
from chalicelib.domain.rollout import Rollout, RolloutPhase
from chalicelib.domain.spec import TargetSpec
from chalicelib.services.target_lock import UNSENT_AFTER, TargetLock, sent_commands

if TYPE_CHECKING:
    from chalicelib.services.deployments import DeploymentService, Followed

logger = logging.getLogger(__name__)


class RolloutService:
    def __init__(self, alarms: AlarmWatch, ssm: SsmGateway, store: DeploymentStore, clock: Callable[[], datetime],
                 lock_slack_seconds: int = 900) -> None:
        self._alarms = alarms
        self._ssm = ssm
        self._store = store
        self._lock = TargetLock(store, ssm, lock_slack_seconds)
        self._clock = clock
        self._bound: DeploymentService | None = None

    def bound_to(self, deployments: DeploymentService) -> RolloutService:
        """This service acting for `deployments`, which sends the tries and settles the ends."""
        bound = copy(self)
        bound._bound = deployments
        return bound

    @property
    def _deployments(self) -> DeploymentService:
        assert self._bound is not None, "RolloutService.bound_to(deployments) first"
        return self._bound

    # before the target is taken ----------------------------------------------------------------------------------
    def refuse_if_firing(self, spec: TargetSpec) -> None:
        """Raise AlarmFiring when an alarm of the spec is in ALARM, InvalidRevision when one does not exist: nothing is
        recorded and nothing sent."""
        names = spec.rollout.alarms or []
        if not names:
            return
        states = self._alarms.states(names)
        absent = waves.missing(names, states)
        if absent:
            raise InvalidRevision(f"rollout.alarms: no CloudWatch metric alarm is named "
                                  f"{', '.join(map(repr, absent))} in this account and region; an alarm that does not "
                                  "exist can never stop a rollout (composite alarms are not read: name the metric "
                                  "alarms they combine)")
        fired = waves.firing(states)
        if fired:
            raise AlarmFiring(f"not started, nothing was sent: {waves.alarm_message(fired)}")

    # the first wave ----------------------------------------------------------------------------------------------
    def first_wave(self, deployment: Deployment, instances: list[str], cause: str, refused_raises: bool
                   ) -> Deployment:
        plan = Rollout(waves=waves.plan_waves(instances, deployment.spec.rollout.canary))
        claimed = self._store.save_deployment(transitions.wave_sent(deployment, self._clock(), plan))
        return self._deployments.send_claimed(claimed, cause, refused_raises)

    # each refresh, before SSM is asked about the command ---------------------------------------------------------
    def watch(self, deployment: Deployment) -> Followed | None:
        """Act on the alarms and the bake; None when the command out (a wave's or the rollback's) is to be followed
        as any other."""
        from chalicelib.services.deployments import Followed

        rollout = self._rollout(deployment)
        if rollout.phase == RolloutPhase.STOPPING:
            return Followed(self._stopping(deployment), None)
        if rollout.phase == RolloutPhase.ROLLING_BACK:
            return None
        fired = self._firing(deployment)
        if fired:
            return Followed(self._halt(deployment, waves.alarm_message(fired), "an alarm in ALARM"), None)
        if rollout.phase == RolloutPhase.WAVE:
            return None
        return self._baked_or_baking(deployment)

    def _firing(self, deployment: Deployment) -> list[waves.AlarmState]:
        names = deployment.spec.rollout.alarms or []
        return waves.firing(self._alarms.states(names)) if names else []

    def _baked_or_baking(self, deployment: Deployment) -> Followed:
        from chalicelib.services.deployments import Followed

        rollout = self._rollout(deployment)
        now = self._clock()
        left = waves.bake_left(deployment.spec.rollout, rollout, now)
        if left > 0:
            done = rollout.wave * 100 // len(rollout.waves)
            return Followed(deployment, Progress(Phase.RUNNING, {}, min(99, done),
                                                 f"{rollout.describe()} passed; baking, {left} s left"))
        if rollout.last_wave:
            digests = {result.digest for attempt in deployment.attempts if attempt.wave is not None
                       for result in attempt.instances.values() if result.digest}
            return Followed(self._deployments.settle(deployment, transitions.succeeded(
                deployment, self._success_message(rollout), digests, now)), None)
        if not self._lock.hold(deployment, now):
            return Followed(self._deployments.superseded(deployment, now, f"wave {rollout.wave + 1} not sent"), None)
        claimed = self._store.save_deployment(transitions.wave_sent(deployment, now))
        return Followed(self._deployments.send_claimed(claimed, f"{rollout.describe()} baked"), None)

    @staticmethod
    def _success_message(rollout: Rollout) -> str:
        instances = sum(len(wave) for wave in rollout.waves)
        return f"{instances} instances in {len(rollout.waves)} waves, every bake passed with no alarm in ALARM"

    # once a command is over -------------------------------------------------------------------------------------
    def command_over(self, deployment: Deployment, progress: Progress, now: datetime) -> Deployment:
        """A wave's command is over (passed: bake; failed: halt), or the rollback's (the deployment ends)."""
        rollout = self._rollout(deployment)
        if rollout.phase == RolloutPhase.ROLLING_BACK:
            return self._rollback_over(deployment, progress, now)
        if progress.phase == Phase.FAILED:
            return self._halt(deployment, f"{rollout.describe()} failed: {progress.failure_message}",
                              "the wave exceeded max_errors")
        passed = self._store.save_deployment(transitions.wave_passed(deployment, progress.summary, now))
        bake = waves.bake_seconds(passed.spec.rollout, self._rollout(passed))
        if bake > 0:
            self._lock.hold(passed, now, until=now + timedelta(seconds=bake + self._lock.ttl(passed)))
        return self._baked_or_baking(passed).deployment

    # halting and rolling back -----------------------------------------------------------------------------------
    def _halt(self, deployment: Deployment, reason: str, cause: str) -> Deployment:
        """Stop sending the new revision: cancel a wave still out, then roll back (or fail, with auto_rollback off)."""
        attempt = deployment.attempts[-1]
        rollout = self._rollout(deployment)
        if rollout.phase == RolloutPhase.WAVE and attempt.ended_at is None and attempt.command_id is not None:
            self._cancel(deployment, attempt.command_id)
        halted = self._store.save_deployment(transitions.rollout_halted(deployment, reason, cause, self._clock()))
        return self._stopping(halted)

    def _cancel(self, deployment: Deployment, command_id: str) -> None:
        try:
            self._ssm.cancel(command_id)
        except AwsCallFailed as exc:
            # The command stays out: the rollback waits until it is over (SSM's own timeout at the latest).
            logger.warning("could not cancel the wave's command; the rollback waits until it is over",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})

    def _stopping(self, deployment: Deployment) -> Deployment:
        """Halted: once the halted wave's command is over and its results read, roll back (or fail)."""
        now = self._clock()
        attempt = deployment.attempts[-1]
        if attempt.ended_at is None:
            commands = [attempt.command_id] if attempt.command_id else sent_commands(self._ssm, deployment, attempt)
            if not commands and now - attempt.last_send_at < UNSENT_AFTER:
                return deployment               # its send may still land: it must be cancelled before anything else
            for command_id in commands:
                state = self._ssm.command_state(command_id)
                if state is None or not state.over:
                    if attempt.command_id is None:      # found by its comment only now: not cancelled yet
                        self._cancel(deployment, command_id)
                    return deployment           # cancelled; over within moments (or at SSM's timeout)
            if commands:
                deployment = self._deployments.read_results(deployment, commands[0])
        reason = self._rollout(deployment).stop_reason or "halted"
        if not deployment.spec.rollout.auto_rollback:
            return self._ended(deployment, transitions.failed(
                deployment, f"{reason}. Not rolled back (rollout.auto_rollback is false): "
                            f"{self._received_text(deployment)}", now))
        instances = waves.received_new_revision(deployment.attempts)
        if not instances:
            return self._ended(deployment, transitions.rolled_back(
                deployment, f"{reason}. No instance had started the new revision: nothing to roll back", now))
        previous = deployment.previous_revision
        if previous is None:
            return self._ended(deployment, transitions.failed(
                deployment, f"{reason}. Not rolled back: the target has no previous revision (this was its first "
                            f"deployment): {self._received_text(deployment)}", now))
        if not self._lock.hold(deployment, now):
            return self._deployments.superseded(deployment, now, "rollback not sent")
        claimed = self._store.save_deployment(transitions.rollback_sent(deployment, instances, previous.pinned, now))
        return self._deployments.send_claimed(claimed, f"rollback: {reason[:200]}")

    def _rollback_over(self, deployment: Deployment, progress: Progress, now: datetime) -> Deployment:
        reason = self._rollout(deployment).stop_reason or "halted"
        attempt = deployment.attempts[-1]
        if progress.phase == Phase.SUCCEEDED:
            return self._ended(deployment, transitions.rolled_back(
                deployment, f"{reason}. Rolled back {len(attempt.expected_instances)} instances to {attempt.image}",
                now))
        return self._ended(deployment, transitions.failed(
            deployment, f"{reason}. The rollback to {attempt.image} failed too: {progress.failure_message}", now))

    def _ended(self, deployment: Deployment, finished: Deployment) -> Deployment:
        """Settle the end; a rollout that did not succeed counts toward the target's breaker."""
        settled = self._deployments.settle(deployment, finished)
        if settled.status in (DeploymentStatus.ROLLED_BACK, DeploymentStatus.FAILED):
            self._deployments.count_failure(settled, finished.updated_at)
        return settled

    @staticmethod
    def _received_text(deployment: Deployment) -> str:
        instances = waves.received_new_revision(deployment.attempts)
        shown = ", ".join(instances[:20]) + (" ..." if len(instances) > 20 else "")
        return f"{len(instances)} instances may run the new revision ({shown})" if instances else \
            "no instance had started the new revision"

    @staticmethod
    def _rollout(deployment: Deployment) -> Rollout:
        assert deployment.rollout is not None       # only rollouts in waves are handed here
        return deployment.rollout
