"""Load balancer draining, carried out: each batch out of its target groups before its swap, back in and healthy
before the next. services/rollout.py calls it at each phase of a rollout behind `load_balancer` (domain/draining.py
decides; this module makes the ELBv2 calls and saves each transition).

Every ELBv2 call that changes something is made after the record says it is about to be made: a batch that may be
out of its groups is always `rollout.out_of_groups`, and is registered again before the deployment ends, whatever
ends it. A call that fails leaves the record as it was saved, so the next refresh (a pipeline continuation, an SSM
event, `GET /deployments/{id}`) makes it again; deregistering reads the group first and takes out only what is still
registered, so doing it twice is harmless. Each waiting refresh reads the batch's target health once (one
DescribeTargetHealth a group), whatever the fleet size or the refreshes spent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from chalicelib.adapters.elbv2 import TargetGroups
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import draining, transitions
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.progress import Phase, Progress
from chalicelib.domain.rollout import Rollout
from chalicelib.services.places import Located, placed_groups

logger = logging.getLogger(__name__)


class Draining:
    def __init__(self, groups: TargetGroups, store: DeploymentStore, clock: Callable[[], datetime],
                 located: Located | None = None) -> None:
        self._groups = placed_groups(groups, located)
        self._store = store
        self._clock = clock

    # taking a batch out --------------------------------------------------------------------------------------------
    def in_place(self, deployment: Deployment, batch: list[str]) -> list[str]:
        """The groups `batch` would leave with no healthy target (empty: it may be taken out)."""
        return draining.in_place_groups(batch, self._groups.of(deployment).registered(_arns(deployment)))

    def take_out(self, deployment: Deployment, plan: Rollout | None = None) -> Deployment:
        """Claim the next batch as DRAINING (saved first), then deregister it."""
        claimed = self._store.save_deployment(transitions.batch_draining(deployment, self._clock(), plan))
        return self.deregister(claimed)

    def deregister(self, deployment: Deployment) -> Deployment:
        """Deregister what of the batch is still registered in each group, then record since when it drains. A failed
        call leaves the record DRAINING with no deregistration recorded: the next refresh does it again."""
        rollout = _rollout(deployment)
        batch = set(rollout.waves[rollout.wave - 1])
        try:
            for arn, targets in self._groups.of(deployment).registered(_arns(deployment)).items():
                self._groups.of(deployment).deregister(arn, [t for t in targets if t.instance_id in batch
                                              and t.state not in ("draining", "unhealthy.draining")])
            delay = draining.drain_seconds(self._groups.of(deployment).settings(_arns(deployment)))
        except AwsCallFailed as exc:
            logger.warning("could not deregister the batch; trying again on the next refresh",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})
            return deployment
        return self._store.save_deployment(transitions.batch_deregistered(deployment, delay, self._clock()))

    def drained(self, deployment: Deployment) -> tuple[bool, Progress]:
        """Whether the deregistered batch may be swapped now (one DescribeTargetHealth a group), and the progress."""
        rollout = _rollout(deployment)
        assert rollout.elb_done_at is not None
        now = self._clock()
        health = self._groups.of(deployment).health(_arns(deployment), rollout.waves[rollout.wave - 1],
                                                    _port(deployment))
        if draining.drained(health, rollout.elb_done_at, rollout.drain_seconds, now):
            return True, self._progress(rollout, "drained")
        left = max(0, rollout.drain_seconds - int((now - rollout.elb_done_at).total_seconds()))
        busy = len({t.instance_id for t in draining.still_draining(health)})
        return False, self._progress(rollout, f"draining: {busy} instances still draining, at most {left} s left")

    # putting it back -----------------------------------------------------------------------------------------------
    def register(self, deployment: Deployment) -> Deployment:
        """Register the batch in every group on the container's host port, then record it (REGISTERING: with the time
        it has to become healthy). A failed call leaves the batch marked out: the next refresh does it again."""
        rollout = _rollout(deployment)
        try:
            self._groups.of(deployment).register(_arns(deployment), rollout.waves[rollout.wave - 1], _port(deployment))
            within = draining.healthy_within(self._groups.of(deployment).settings(_arns(deployment)),
                                             deployment.spec.rollout.timeout_seconds)
        except AwsCallFailed as exc:
            logger.warning("could not register the batch; trying again on the next refresh",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})
            return deployment
        return self._store.save_deployment(transitions.batch_registered(deployment, within, self._clock()))

    def put_back(self, deployment: Deployment) -> None:
        """Register the batch again, with no transition: the deployment is about to end outside its rollout (a person
        cancels it). Raises AwsCallFailed: the cancel is refused until the batch is back."""
        rollout = _rollout(deployment)
        self._groups.of(deployment).register(_arns(deployment), rollout.waves[rollout.wave - 1], _port(deployment))

    def registration(self, deployment: Deployment) -> draining.Registration:
        """Where the registered batch stands in its groups (one DescribeTargetHealth a group)."""
        rollout = _rollout(deployment)
        assert rollout.elb_done_at is not None
        batch = rollout.waves[rollout.wave - 1]
        return draining.registration(batch, _arns(deployment),
                                     self._groups.of(deployment).health(_arns(deployment), batch, _port(deployment)),
                                     rollout.elb_done_at, rollout.healthy_within, self._clock())

    @staticmethod
    def registering_progress(rollout: Rollout, registration: draining.Registration) -> Progress:
        total = len(rollout.waves[rollout.wave - 1])
        return Draining._progress(rollout, f"registering: {len(registration.healthy)} of {total} healthy in the "
                                           "target groups")

    @staticmethod
    def _progress(rollout: Rollout, what: str) -> Progress:
        done = (rollout.wave - 1) * 100 // len(rollout.waves)
        return Progress(Phase.RUNNING, {}, min(99, done), f"{rollout.describe()}: {what}")


def _arns(deployment: Deployment) -> list[str]:
    assert deployment.spec.load_balancer is not None
    return deployment.spec.load_balancer.target_group_arns


def _port(deployment: Deployment) -> int:
    port = deployment.spec.load_balancer_port()
    assert port is not None          # refused at the edge (TargetSpec)
    return port


def _rollout(deployment: Deployment) -> Rollout:
    assert deployment.rollout is not None
    return deployment.rollout
