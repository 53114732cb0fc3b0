"""`POST /targets/{name}/plan`: what a deployment of the target would do now, and what would refuse it.

Only reads, each through the adapter the deployment itself uses: the record (with what each instance runs as far as
berth knows, domain/fleet.py), the lock and the newest deployment (DynamoDB GetItem and Query), the image's digest and
the checks before anything is touched (the redeploy path's resolution: ECR DescribeImages, BatchGetImage,
DescribeImageScanFindings; EC2 by architecture), the instances (EC2, as a deployment resolves them) and their SSM
status (DescribeInstanceInformation), the alarms (DescribeAlarms). Nothing is sent, written or locked: a plan may be
asked for while a deployment runs, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chalicelib.adapters.cloudwatch import AlarmWatch
from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import plan as planning
from chalicelib.domain.deployment import Deployment, Revision
from chalicelib.domain.errors import (
    ArchitectureMismatch,
    AwsCallFailed,
    InvalidRequest,
    InvalidRevision,
    ScanFindings,
    ScanPending,
    TargetNotFound,
)
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.plan import Plan, PlannedInstance
from chalicelib.domain.release import PlannedRelease, released_before
from chalicelib.domain.spec import TargetSpec
from chalicelib.domain.target import TargetRecord
from chalicelib.services.places import Located, placed_alarms, placed_instances, placed_ssm
from chalicelib.services.release_tasks import EARLIER_DEPLOYMENTS

Resolve = Callable[[TargetSpec, str], Revision]
IMAGE_UNRESOLVED = "ImageUnresolved"
IMAGE_REFUSALS: dict[type[Exception], str] = {
    ArchitectureMismatch: "ArchitectureMismatch", ScanFindings: "ScanFindings", ScanPending: "ScanPending"}


class Planner:
    def __init__(self, store: DeploymentStore, resolve: Resolve, instances: InstanceDirectory, ssm: SsmGateway,
                 alarms: AlarmWatch, clock: Callable[[], datetime], located: Located | None = None) -> None:
        """`resolve` is DeploymentService.resolve_revision: the plan pins an image exactly as a redeploy would."""
        self._store = store
        self._resolve = resolve
        self._instances = placed_instances(instances, located)
        self._ssm = placed_ssm(ssm, located)
        self._alarms = placed_alarms(alarms, located)
        self._clock = clock

    def plan(self, name: str, image: str | None) -> Plan:
        record = self._store.get_target(name)
        if record is None:
            raise TargetNotFound(f"target {name!r} is not registered: register it with PUT /targets/{name}")
        if image is not None:
            try:
                parse_image_ref(image)
            except InvalidRevision as exc:   # not an image reference at all: the request is wrong, as for a redeploy
                raise InvalidRequest(exc.message, field="image") from None
        spec = record.spec
        revision, image_problem, image_code = self._revision(record, image)
        matched, instance_problem = self._matched(spec)
        statuses = self._ssm.of_spec(spec).ping_statuses(spec.instances) if matched else {}
        # With a release task, enough history to tell whether it already ran for this digest (release_tasks.py).
        newest, _ = self._store.list_deployments(name, limit=EARLIER_DEPLOYMENTS if spec.release else 1)
        last = newest[0] if newest else None
        known = planning.known_digests(record.fleet, last)
        current = record.current_revision.digest if record.current_revision else None
        instances = []
        for instance_id in matched:
            digest, put_by = known.get(instance_id, (None, None))
            instances.append(PlannedInstance(instance_id, instance_id in statuses, statuses.get(instance_id), digest,
                                             put_by, behind=current is not None and digest != current))
        names = spec.rollout.alarms or []
        states = self._alarms.of_spec(spec).states(names) if names else []
        refusals = planning.refusals(
            busy_with=self._busy_with(name), breaker_open=record.breaker_open_since is not None,
            image_problem=image_problem, image_code=image_code, instances=instances, instances_problem=instance_problem,
            alarm_names=names, states=states)
        return Plan(target=name, revision=revision, current_revision=record.current_revision, instances=instances,
                    rollout=spec.rollout, in_waves=spec.in_waves,
                    waves=planning.planned_waves(spec.rollout, matched, spec.load_balancer is not None),
                    alarms=planning.alarms_with_missing(names, states), refusals=refusals,
                    target_group_arns=spec.load_balancer.target_group_arns if spec.load_balancer else [],
                    release=self._release(spec, revision, statuses, newest))

    @staticmethod
    def _release(spec: TargetSpec, revision: Revision | None, statuses: dict[str, str],
                 newest: list[Deployment]) -> PlannedRelease | None:
        """Where the release task would run (the first Online instance by id), or the deployment it already ran in."""
        if spec.release is None:
            return None
        online = sorted(instance for instance, status in statuses.items() if status == "Online")
        ran_in = released_before(spec.release.command, revision.digest if revision else None, newest)
        return PlannedRelease(command=list(spec.release.command), timeout_seconds=spec.release.timeout_seconds,
                              instance_id=online[0] if online else None, ran_in=ran_in)

    def _revision(self, record: TargetRecord, image: str | None) -> tuple[Revision | None, str | None, str]:
        """The revision a redeploy would ship, or why it could not (and the refusal's code): the image given, else
        the current revision again (already pinned), else the spec's image. The checks before anything is touched
        (the image's platforms, its scan) refuse it as the deployment would."""
        if image is None and record.current_revision is not None:
            return record.current_revision, None, IMAGE_UNRESOLVED
        image = image if image is not None else record.spec.image
        if image is None:
            return (None, "the target has no current revision and its spec names no image: give the image to deploy",
                    IMAGE_UNRESOLVED)
        try:
            return self._resolve(record.spec, image), None, IMAGE_UNRESOLVED
        except (InvalidRevision, AwsCallFailed) as exc:
            return None, exc.message, IMAGE_REFUSALS.get(type(exc), IMAGE_UNRESOLVED)

    def _matched(self, spec: TargetSpec) -> tuple[list[str], str | None]:
        try:
            return self._instances.of_spec(spec).running_instances(spec.instances), None
        except InvalidRevision as exc:   # e.g. unknown instance ids
            return [], exc.message

    def _busy_with(self, name: str) -> str | None:
        lock = self._store.get_lock(name)
        if lock is None or lock.expires_at < self._clock().timestamp():
            return None
        return lock.deployment_id
