"""Carrying out a rollout in waves: the alarms before the first wave, between and during waves, bakes, and rollback.

DeploymentService hands a deployment whose spec has `rollout.canary`, `rollout.alarms` or `load_balancer` to this module
at four
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

Behind a load balancer each batch is drained before its wave and registered after it (services/draining.py makes the
ELBv2 calls): `watch` advances DRAINING and REGISTERING, reading the batch's target health once a refresh, after the
alarms. A batch out of its groups is registered again before any rollback or end; the rollback's on-host swap is
gapless, so the instances it goes to stay registered through it.
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
from chalicelib.domain import draining, transitions
from chalicelib.domain import rollout as waves
from chalicelib.domain.deployment import Deployment, DeploymentStatus
from chalicelib.domain.errors import AlarmFiring, AwsCallFailed, InvalidRevision
from chalicelib.domain.progress import Phase, Progress
from chalicelib.domain.rollout import Rollout, RolloutPhase
from chalicelib.domain.spec import TargetSpec
from chalicelib.services.draining import Draining
from chalicelib.services.places import Located, placed_alarms, placed_ssm
from chalicelib.services.target_lock import UNSENT_AFTER, TargetLock, sent_commands

if TYPE_CHECKING:
    from chalicelib.services.deployments import DeploymentService, Followed

logger = logging.getLogger(__name__)


class RolloutService:
    def __init__(self, alarms: AlarmWatch, ssm: SsmGateway, store: DeploymentStore, clock: Callable[[], datetime],
                 lock_slack_seconds: int = 900, draining: Draining | None = None,
                 located: Located | None = None) -> None:
        self._alarms = placed_alarms(alarms, located)
        self._draining = draining
        self._ssm = placed_ssm(ssm, located)
        self._store = store
        self._lock = TargetLock(store, self._ssm, lock_slack_seconds)
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
        states = self._alarms.of_spec(spec).states(names)
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
        plan = Rollout(waves=waves.plan_for(deployment.spec, instances))
        if deployment.spec.load_balancer is not None:
            return self._next_batch(deployment, cause, plan, refused_raises)
        claimed = self._store.save_deployment(transitions.wave_sent(deployment, self._clock(), plan))
        return self._deployments.send_claimed(claimed, cause, refused_raises)

    def _next_batch(self, deployment: Deployment, cause: str, plan: Rollout | None = None,
                    refused_raises: bool = False) -> Deployment:
        """Behind a load balancer: take the next batch out of its groups (its swap follows once it has drained), or
        swap it in place when taking it out would leave a group with no healthy target."""
        rollout = plan or self._rollout(deployment)
        batch = rollout.waves[0 if plan is not None else rollout.wave]
        kept = self._drain.in_place(deployment, batch)
        if kept:
            logger.info("batch swapped in place", extra={"deployment_id": deployment.deployment_id, "groups": kept})
            claimed = self._store.save_deployment(transitions.wave_sent(deployment, self._clock(), plan,
                                                                        in_place=True))
            return self._deployments.send_claimed(claimed, cause, refused_raises)
        return self._drain.take_out(deployment, plan)

    @property
    def _drain(self) -> Draining:
        if self._draining is None:
            raise InvalidRevision("load_balancer needs berth's Elastic Load Balancing access, which this rollout "
                                  "service was built without")
        return self._draining

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
        if rollout.phase == RolloutPhase.DRAINING:
            return self._draining_batch(deployment)
        if rollout.phase == RolloutPhase.REGISTERING:
            return self._registering_batch(deployment)
        return self._baked_or_baking(deployment)

    def _draining_batch(self, deployment: Deployment) -> Followed:
        """DRAINING: deregister (again, if the last try's answer never came), or swap the batch once it has drained."""
        from chalicelib.services.deployments import Followed

        rollout = self._rollout(deployment)
        if rollout.elb_done_at is None:
            deployment = self._drain.deregister(deployment)
            return Followed(deployment, Progress(Phase.RUNNING, {}, 0, f"{rollout.describe()}: deregistering"))
        done, progress = self._drain.drained(deployment)
        if not done:
            return Followed(deployment, progress)
        now = self._clock()
        if not self._lock.hold(deployment, now):
            return Followed(self._ended_out(deployment, f"{rollout.describe()} not sent"), None)
        claimed = self._store.save_deployment(transitions.wave_sent(deployment, now))
        return Followed(self._deployments.send_claimed(claimed, f"{rollout.describe()} drained"), progress)

    def _registering_batch(self, deployment: Deployment) -> Followed:
        """REGISTERING: register (again, if the last try's answer never came), then wait until every target is healthy
        in every group; an unhealthy one counts as a failed instance against max_errors."""
        from chalicelib.services.deployments import Followed

        rollout = self._rollout(deployment)
        if rollout.elb_done_at is None:
            deployment = self._drain.register(deployment)
            return Followed(deployment, Progress(Phase.RUNNING, {}, 0, f"{rollout.describe()}: registering"))
        registration = self._drain.registration(deployment)
        batch = rollout.waves[rollout.wave - 1]
        budget = draining.error_budget(deployment.spec.rollout.max_errors, len(batch))
        if len(registration.failed) > budget or (registration.failed and not registration.healthy
                                                 and registration.decided):
            return Followed(self._halt(deployment, f"{rollout.describe()} failed: "
                                                   f"{draining.failure_message(registration.failed)}",
                                       "targets unhealthy in the load balancer"), None)
        if not registration.decided:
            return Followed(deployment, self._drain.registering_progress(rollout, registration))
        summary = f"{len(registration.healthy)} of {len(batch)} healthy in the target groups"
        if registration.failed:
            summary += f" ({draining.failure_message(registration.failed)}, within max_errors)"
        now = self._clock()
        healthy = self._store.save_deployment(transitions.batch_healthy(deployment, summary, now))
        return Followed(self._bake(healthy, now), None)

    def _firing(self, deployment: Deployment) -> list[waves.AlarmState]:
        names = deployment.spec.rollout.alarms or []
        return waves.firing(self._alarms.of(deployment).states(names)) if names else []

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
        if deployment.spec.load_balancer is not None:
            return Followed(self._next_batch(deployment, f"{rollout.describe()} baked"), None)
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
        if rollout.out_of_groups:       # a drained batch: registered again, healthy before its bake
            swapped = self._store.save_deployment(transitions.batch_swapped(deployment, progress.summary, now))
            self._lock.hold(swapped, now)
            return self._drain.register(swapped)
        passed = self._store.save_deployment(transitions.wave_passed(deployment, progress.summary, now))
        return self._bake(passed, now)

    def _bake(self, passed: Deployment, now: datetime) -> Deployment:
        """The wave passed (and its batch is healthy in its groups): bake, holding the target to the bake's end."""
        bake = waves.bake_seconds(passed.spec.rollout, self._rollout(passed))
        if bake > 0:
            self._lock.hold(passed, now, until=now + timedelta(seconds=bake + self._lock.ttl(passed)))
        return self._baked_or_baking(passed).deployment

    def put_batch_back(self, deployment: Deployment) -> None:
        """A batch out of its groups goes back in before a person's cancel ends the deployment."""
        if self._rollout(deployment).out_of_groups:
            self._drain.put_back(deployment)

    # halting and rolling back -----------------------------------------------------------------------------------
    def _halt(self, deployment: Deployment, reason: str, cause: str) -> Deployment:
        """Stop sending the new revision: cancel a wave still out, then roll back (or fail, with auto_rollback off)."""
        attempt = deployment.current_attempt
        rollout = self._rollout(deployment)
        if (rollout.phase == RolloutPhase.WAVE and attempt is not None and attempt.ended_at is None
                and attempt.command_id is not None):
            self._cancel(deployment, attempt.command_id)
        halted = self._store.save_deployment(transitions.rollout_halted(deployment, reason, cause, self._clock()))
        return self._stopping(halted)

    def _cancel(self, deployment: Deployment, command_id: str) -> None:
        try:
            self._ssm.of(deployment).cancel(command_id)
        except AwsCallFailed as exc:
            # The command stays out: the rollback waits until it is over (SSM's own timeout at the latest).
            logger.warning("could not cancel the wave's command; the rollback waits until it is over",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})

    def _stopping(self, deployment: Deployment) -> Deployment:
        """Halted: once the halted wave's command is over and its results read, roll back (or fail)."""
        now = self._clock()
        attempt = deployment.current_attempt
        if attempt is not None and attempt.ended_at is None:
            ssm = self._ssm.of(deployment)
            commands = [attempt.command_id] if attempt.command_id else sent_commands(ssm, deployment, attempt)
            if not commands and now - attempt.last_send_at < UNSENT_AFTER:
                return deployment               # its send may still land: it must be cancelled before anything else
            for command_id in commands:
                state = ssm.command_state(command_id)
                if state is None or not state.over:
                    if attempt.command_id is None:      # found by its comment only now: not cancelled yet
                        self._cancel(deployment, command_id)
                    return deployment           # cancelled; over within moments (or at SSM's timeout)
            if commands:
                deployment = self._deployments.read_results(deployment, commands[0])
        if self._rollout(deployment).out_of_groups:
            # A batch out of its groups goes back in first: the rollback's on-host swap is gapless, so the instances
            # stay registered through it.
            deployment = self._drain.register(deployment)
            if self._rollout(deployment).out_of_groups:
                return deployment
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

    def _ended_out(self, deployment: Deployment, what: str) -> Deployment:
        """The target moved on while the batch was out of its groups: halt, so it is registered again before the
        deployment ends (the rollback that would follow finds the target taken, and gives up)."""
        return self._halt(deployment, f"the target moved on: {what}", "the target's lock")

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
