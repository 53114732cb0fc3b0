"""The instance_launches Lambda and the joins' scheduled looks: a new instance gets its target's current revision.

An instance is announced by EventBridge (chalicelib.domain.instance_launch); berth reads its tags and launch time
(DescribeInstances), finds the one target it joins (chalicelib.domain.join.matching_targets) and keeps a join record
per instance launch, so duplicate deliveries, and the two events of an Auto Scaling launch with a hook, make one join.
Then, without sleeping: until SSM reports the instance Online, and while another deployment holds the target, berth
looks again through a one-time schedule (a `join` payload for the retry_deployment Lambda), within JoinPolicy's
bounds. Once it can, it starts a deployment of the target's current revision to that instance alone (trigger "join",
one command). A deployment by tags that expects the instance and was sent after its launch covers it instead.

The end (services/join_ends.py): the join deployment's end is settled by the usual follow paths (SSM events,
scheduled looks, the REST API), which call `JoinEnds.deployment_ended`; a covering deployment is watched by looks.
The lifecycle action, when there is one, is completed once: CONTINUE when the deployment succeeded or there was
nothing to deploy, ABANDON when it failed, the wait ran out or the instance matched more than one target. Strangers
(no target matches) are not recorded; their lifecycle action, which berth does not own, is completed CONTINUE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.adapters.autoscaling import LifecycleActions
from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import Conflict, ScheduleTaken, TargetBusy
from chalicelib.domain.instance_launch import InstanceLaunch
from chalicelib.domain.join import InstanceNotVisible, JoinPolicy, JoinRecord, Result, matching_targets
from chalicelib.domain.retry_payload import JoinLook
from chalicelib.domain.spec import InstancesSpec, TargetSpec
from chalicelib.domain.spec.location import Home, LocationSpec, lives_in
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.join_ends import JoinEnds
from chalicelib.services.outcome import Outcome
from chalicelib.services.places import Located, placed_instances, placed_lifecycle, placed_ssm

logger = logging.getLogger(__name__)


class InstanceJoins:
    def __init__(self, store: DeploymentStore, instances: InstanceDirectory, ssm: SsmGateway,
                 deployments: Callable[[], DeploymentService], lifecycle: LifecycleActions, ends: JoinEnds,
                 clock: Callable[[], datetime], policy: JoinPolicy | None = None, located: Located | None = None,
                 home: Home | None = None) -> None:
        self._store = store
        self._instances = placed_instances(instances, located)
        self._ssm = placed_ssm(ssm, located)
        self._deployments = deployments     # built when first needed: a duplicate or a stranger needs none
        self._lifecycle = placed_lifecycle(lifecycle, located)
        self._home = home or Home("", "")
        self._ends = ends
        self._clock = clock
        self._policy = policy or JoinPolicy()

    # entry points ---------------------------------------------------------------------------------------------------
    def on_launch(self, launch: InstanceLaunch) -> Outcome:
        """An instance in berth's own account and region is described there; one in another account and region only
        when a target lives there (then with that target's role), and an event from anywhere else is ignored."""
        located: list[TargetSpec] | None = None
        if not lives_in(None, launch.account, launch.region, self._home):
            located = self._targets_in(launch)
            if not located:
                logger.info("an instance event from an account and region no target lives in: ignored",
                            extra={"account": launch.account, "region": launch.region,
                                   "instance_id": launch.instance_id})
                return Outcome("ignored", f"no target lives in account {launch.account}, region {launch.region}")
        where = located[0].location if located else None
        facts = self._instances.at(where, launch.instance_id).describe(launch.instance_id)
        if facts is None:
            raise InstanceNotVisible(f"EC2 does not describe instance {launch.instance_id} yet; delivered again")
        if facts.state not in ("pending", "running"):
            self._complete_stranger(launch, "CONTINUE", where)
            return Outcome("ignored", f"instance {launch.instance_id} is not running")
        record = self._store.get_join(launch.instance_id)
        if record is not None and record.launched_at == facts.launched_at:
            return self._again(record, launch)
        targets = located if located is not None else self._targets_in(launch)
        matches = matching_targets(facts.tags, targets)
        if not matches:
            self._complete_stranger(launch, "CONTINUE", where)
            return Outcome("ignored", f"instance {launch.instance_id} belongs to no target (its tags, berth:managed)")
        now = self._clock()
        fresh = JoinRecord(instance_id=launch.instance_id, launched_at=facts.launched_at, source=launch.source,
                           first_seen=now, target=matches[0], hook=launch.hook,
                           version=record.version if record else 0,
                           location=next(spec.location for spec in targets if spec.target == matches[0]))
        if len(matches) > 1:
            fresh = fresh.ambiguous(matches)
        try:
            fresh = self._ends.save(fresh)
        except Conflict:        # a concurrent delivery wrote first
            current = self._store.get_join(launch.instance_id)
            return self._again(current, launch) if current else Outcome("duplicate", "the join moved on")
        logger.info("a new instance joins", extra={"instance_id": launch.instance_id, "target": fresh.target,
                                                   "lifecycle_hook": fresh.hook.name if fresh.hook else None})
        return self._advance(fresh)

    def look(self, task: JoinLook) -> Outcome:
        """A scheduled look; a duplicate or a stale one (another launch, a look already made) does nothing."""
        record = self._store.get_join(task.instance_id)
        if record is None or int(record.launched_at.timestamp()) != task.launch or record.looks != task.attempt - 1:
            return Outcome("duplicate", f"look {task.attempt} at {task.instance_id} is not due")
        try:
            record = self._ends.save(record.looked(task.attempt))
        except Conflict:
            return Outcome("duplicate", f"look {task.attempt} at {task.instance_id} is made by another handler")
        return self._advance(record)

    # the join's course ----------------------------------------------------------------------------------------------
    def _again(self, record: JoinRecord, launch: InstanceLaunch) -> Outcome:
        """The same launch announced again: a duplicate, or the lifecycle action after the state change. Either way
        the join is driven on from where its record stands, so a delivery after a handler that failed half-way (a
        schedule not created, an answer lost) finishes its work; what was done already is not done twice (the
        target's lock, the look's schedule name, the completion's claim)."""
        if launch.hook is not None and record.hook is None:
            try:
                record = self._ends.save(record.held_by(launch.hook))
            except Conflict:
                return Outcome("duplicate", f"instance {launch.instance_id}'s join moved on; delivered again")
            if record.result is None:
                return Outcome("recorded", f"instance {launch.instance_id}'s lifecycle action kept for its join's end")
            return self._ends.complete(record)
        outcome = self._advance(record)
        return Outcome("duplicate", f"instance {launch.instance_id}'s launch is handled already: {outcome.detail}")

    def _advance(self, record: JoinRecord) -> Outcome:
        if record.result is not None:
            return self._ends.complete(record)
        now = self._clock()
        if record.deployment_id is not None:
            deployment = self._store.get_deployment(record.deployment_id)
            if deployment.status.is_final:
                return self._ends.end_with(record, deployment)
            if deployment.trigger == "join":    # its end completes the join (deployment_ended)
                return Outcome("deploying", f"deployment {deployment.deployment_id} is {deployment.status.value}")
            return self._look_later(record, now, f"deployment {deployment.deployment_id} covers it",
                                    self._policy.busy_within)
        assert record.target is not None
        target = self._store.get_target(record.target)
        if target is None or target.current_revision is None:
            return self._ends.end(record, "CONTINUE",
                                  f"target {record.target} has no current revision: nothing to deploy")
        ssm = self._ssm.at(target.spec.location, record.instance_id)
        status = ssm.ping_statuses(InstancesSpec(ids=[record.instance_id])).get(record.instance_id)
        if status != "Online":
            return self._look_later(record, now, f"SSM does not see it Online ({status or 'not managed yet'})",
                                    self._policy.online_within)
        spec = target.spec.on_instances([record.instance_id])
        try:
            deployment = self._deployments().start(spec, target.current_revision, "join", record.source)
        except TargetBusy as busy:
            holder = self._store.get_deployment(busy.holder)
            if _covers(holder, record):
                record = self._ends.save(record.deployed_by(holder.deployment_id))
                return self._look_later(record, now, f"deployment {holder.deployment_id} covers it",
                                        self._policy.busy_within)
            return self._look_later(record, now, f"target {record.target} is busy with {busy.holder}",
                                    self._policy.busy_within)
        try:
            record = self._ends.save(record.deployed_by(deployment.deployment_id))
        except Conflict:        # its end came first (deployment_ended): that completed the join
            return Outcome("deploying", f"deployment {deployment.deployment_id} ended already")
        if deployment.status.is_final:
            return self._ends.end_with(record, deployment)
        return Outcome("deploying", f"deployment {deployment.deployment_id} sends {target.current_revision.pinned} "
                                    f"to {record.instance_id}")

    def _look_later(self, record: JoinRecord, now: datetime, why: str, within: timedelta) -> Outcome:
        if record.waited_too_long(now, within):
            return self._ends.end(record, "ABANDON", f"{why} for more than {int(within.total_seconds())} s: gave up")
        if not self._ends.can_look:
            return self._ends.end(record, "ABANDON", f"{why}, and berth cannot look again: automatic retries "
                                                     "(Scheduler) are not configured")
        try:
            look = self._ends.schedule_look(record, now)
        except ScheduleTaken as exc:
            return self._ends.end(record, "ABANDON", exc.message)
        return Outcome("waiting", f"instance {record.instance_id}: {why}; look {look} scheduled")

    def _targets_in(self, launch: InstanceLaunch) -> list[TargetSpec]:
        """The registered targets that live in the account and region the event came from."""
        return [target.spec for _, target in self._store.list_targets()
                if lives_in(target.spec.location, launch.account, launch.region, self._home)]

    def _complete_stranger(self, launch: InstanceLaunch, result: Result, where: LocationSpec | None) -> None:
        """A lifecycle action berth does not own: let the instance go on (CONTINUE); no record is kept."""
        if launch.hook is not None:
            self._lifecycle.at(where, launch.instance_id).complete(launch.hook, launch.instance_id, result)


def _covers(holder: Deployment, record: JoinRecord) -> bool:
    """Whether the deployment holding the target reaches the new instance already: it targets by tags, its current
    attempt expects the instance, and that attempt was sent after the instance was launched."""
    attempt = holder.current_attempt
    return (holder.spec.instances.tags is not None and attempt is not None
            and record.instance_id in attempt.expected_instances and attempt.started_at >= record.launched_at)
