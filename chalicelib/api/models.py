"""The REST API's response bodies, and the names of its request models (api/requests.py). Their JSON schemas are
what /openapi.json publishes. Responses are built from domain values by each view's `of`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# requests (api/requests.py), named here with the responses: a route names its models in this module
from chalicelib.api.operator_models import CommandStartedView as CommandStartedView
from chalicelib.api.operator_models import ExecStartedView as ExecStartedView
from chalicelib.api.operator_models import ExecView as ExecView
from chalicelib.api.operator_models import LogsView as LogsView
from chalicelib.api.requests import COMMAND_ID as COMMAND_ID
from chalicelib.api.requests import DEPLOYMENT_ID as DEPLOYMENT_ID
from chalicelib.api.requests import AuditQuery as AuditQuery
from chalicelib.api.requests import CancelRequest as CancelRequest
from chalicelib.api.requests import ExecRequest as ExecRequest
from chalicelib.api.requests import FreezeRequest as FreezeRequest
from chalicelib.api.requests import HistoryQuery as HistoryQuery
from chalicelib.api.requests import LogsQuery as LogsQuery
from chalicelib.api.requests import PlanRequest as PlanRequest
from chalicelib.api.requests import RedeployRequest as RedeployRequest
from chalicelib.api.requests import RollbackRequest as RollbackRequest
from chalicelib.api.requests import SyncRequest as SyncRequest
from chalicelib.api.requests import TargetSpecBody as TargetSpecBody
from chalicelib.domain.deployment import Attempt, Decision, Deployment, DeploymentStatus, Revision
from chalicelib.domain.fleet import left_behind
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.progress import tally_results
from chalicelib.domain.release import ReleaseTask
from chalicelib.domain.rollout import Rollout
from chalicelib.domain.spec import TargetSpec


# responses ---------------------------------------------------------------------------------------------------
class RevisionView(BaseModel):
    image: str
    tag: str | None
    digest: str | None
    pinned: str = Field(description="what instances pull: by digest when it is known")

    @classmethod
    def of(cls, revision: Revision | None) -> RevisionView | None:
        if revision is None:
            return None
        return cls(image=revision.image, tag=parse_image_ref(revision.image).tag, digest=revision.digest,
                   pinned=revision.pinned)


class ProgressView(BaseModel):
    """Instances of the current attempt."""

    total: int
    succeeded: int
    failed: int
    pending: int

    @classmethod
    def of(cls, deployment: Deployment) -> ProgressView:
        attempt = deployment.current_attempt
        if attempt is None:
            return cls(total=0, succeeded=0, failed=0, pending=0)
        tally = attempt.tally or tally_results(attempt.expected_instances, attempt.instances)
        return cls(total=tally.total, succeeded=tally.succeeded, failed=tally.failed, pending=tally.pending)


class DeploymentSummary(BaseModel):
    deployment_id: str
    target: str
    status: DeploymentStatus
    final: bool
    trigger: str
    caller: str
    revision: RevisionView
    created_at: datetime
    updated_at: datetime
    message: str
    progress: ProgressView
    left_behind: list[str] = Field(description="a succeeded deployment's instances not on its revision (failed within "
                                               "max_errors, never ran): POST /targets/{name}/sync brings them to it")

    @classmethod
    def fields_of(cls, deployment: Deployment) -> dict[str, Any]:
        return {"deployment_id": deployment.deployment_id, "target": deployment.target, "status": deployment.status,
                "final": deployment.status.is_final, "trigger": deployment.trigger, "caller": deployment.caller,
                "revision": RevisionView.of(deployment.revision), "created_at": deployment.created_at,
                "updated_at": deployment.updated_at, "message": deployment.message,
                "progress": ProgressView.of(deployment), "left_behind": deployment.left_behind}

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentSummary:
        return cls(**cls.fields_of(deployment))


class DeploymentView(DeploymentSummary):
    """One deployment with its attempts, per-instance results and history of decisions."""

    previous_revision: RevisionView | None
    job_id: str | None
    spec: TargetSpec
    attempts: list[Attempt]
    history: list[Decision]
    rollout: Rollout | None = Field(default=None, exclude_if=lambda value: value is None, description=(
        "a rollout in waves (rollout.canary, rollout.alarms or load_balancer): the waves' instances, the wave reached "
        "and its phase"))
    release: ReleaseTask | None = Field(default=None, exclude_if=lambda value: value is None, description=(
        "the spec's release task, run once before the first swap: its instance, SSM command, phase (RELEASING, "
        "RELEASED, FAILED or SKIPPED), exit code and output tail"))

    @classmethod
    def of(cls, value: Any) -> DeploymentView:
        deployment: Deployment = getattr(value, "deployment", value)  # a Followed or a Deployment
        return cls(**cls.fields_of(deployment), previous_revision=RevisionView.of(deployment.previous_revision),
                   job_id=deployment.job_id, spec=deployment.spec, attempts=deployment.attempts,
                   history=deployment.history, rollout=deployment.rollout, release=deployment.release)


class SyncView(DeploymentView):
    """A sync: a deployment of the current revision to the instances left behind (the first 50 of them)."""

    remaining: int = Field(description="running instances still behind beyond the 50 sent now: sync again once this "
                                       "one ends")
    not_running: list[str] = Field(description="instances behind that are not running now: nothing was sent to them")

    @classmethod
    def of(cls, value: Any) -> SyncView:
        return cls(**DeploymentView.of(value.deployment).model_dump(), remaining=value.remaining,
                   not_running=value.not_running)


class HistoryView(BaseModel):
    deployments: list[DeploymentSummary]
    next: str | None = Field(description="pass as ?next= for the next page; null on the last page")

    @classmethod
    def of(cls, page: Any) -> HistoryView:
        return cls(deployments=[DeploymentSummary.of(d) for d in page.deployments], next=page.next_token)


class LockView(BaseModel):
    deployment_id: str
    acquired_at: datetime
    expires_at: datetime


class BreakerView(BaseModel):
    open: bool
    open_since: datetime | None
    recent_failures: list[datetime] = Field(description="automatic deployments' failures the breaker counts")


class InstanceView(BaseModel):
    instance_id: str
    digest: str | None = Field(description="the digest it runs as far as berth knows; null: unknown")
    deployment_id: str | None = Field(description="the deployment that put it there, or last reached it")
    at: datetime | None = Field(description="when that deployment's attempt on it ended")
    behind: bool = Field(description="not on the target's current digest")


class FreezeView(BaseModel):
    reason: str
    by: str = Field(description="who froze the target (the caller's IAM ARN)")
    at: datetime
    until: datetime | None = Field(description="when the freeze ends on its own; null: when someone unfreezes it")
    in_force: bool = Field(description="false once `until` has passed")


class TargetView(BaseModel):
    name: str
    spec: TargetSpec
    updated_by: str
    current_revision: RevisionView | None
    last_deployment: DeploymentSummary | None
    lock: LockView | None = Field(description="the running deployment, if any")
    breaker: BreakerView
    instances: list[InstanceView] = Field(description="what each instance runs as far as berth knows, from the ends "
                                                      "of its deployments (at most 1,000)")
    instances_untracked: int = Field(description="instances left out of `instances` to keep the target's record "
                                                 "bounded (those behind are kept first)")
    behind: list[str] = Field(description="instances not on the current revision's digest (or not known to be): "
                                          "POST /targets/{name}/sync brings them to it")
    freeze: FreezeView | None = Field(default=None, description="the target's freeze, if any: deployments wait or "
                                                                "are refused while it is in force")

    @classmethod
    def of(cls, state: Any) -> TargetView:
        record, lock = state.record, state.lock
        behind = left_behind(record.fleet, record.current_revision)
        late = set(behind)
        return cls(
            name=state.name, spec=record.spec, updated_by=record.updated_by,
            current_revision=RevisionView.of(record.current_revision),
            last_deployment=DeploymentSummary.of(state.last_deployment) if state.last_deployment else None,
            lock=LockView(deployment_id=lock.deployment_id, acquired_at=_moment(lock.acquired_at),
                          expires_at=_moment(lock.expires_at)) if lock else None,
            breaker=BreakerView(open=record.breaker_open_since is not None,
                                open_since=_moment(record.breaker_open_since) if record.breaker_open_since else None,
                                recent_failures=[_moment(at) for at in record.recent_failures]),
            instances=[InstanceView(instance_id=instance_id, digest=known.digest, deployment_id=known.deployment_id,
                                    at=known.at, behind=instance_id in late)
                       for instance_id, known in sorted(record.fleet.instances.items())],
            instances_untracked=record.fleet.untracked, behind=behind,
            freeze=FreezeView(reason=record.freeze.reason, by=record.freeze.by, at=record.freeze.at,
                              until=record.freeze.until, in_force=state.freeze_in_force)
            if record.freeze else None)


class TargetSummary(BaseModel):
    name: str
    current_revision: RevisionView | None
    last_deployment_id: str | None
    breaker_open: bool
    updated_by: str
    account: str | None = Field(default=None, description="the account the target lives in (its location's role); "
                                                          "null: berth's own account")
    region: str | None = Field(default=None, description="the region its location names; null: berth's own region")


class TargetList(BaseModel):
    targets: list[TargetSummary]

    @classmethod
    def of(cls, targets: list[Any]) -> TargetList:
        return cls(targets=[TargetSummary(
            name=name, current_revision=RevisionView.of(record.current_revision),
            last_deployment_id=record.last_deployment_id, breaker_open=record.breaker_open_since is not None,
            updated_by=record.updated_by,
            account=record.spec.location.account if record.spec.location else None,
            region=record.spec.location.region if record.spec.location else None) for name, record in targets])


class PlannedInstanceView(BaseModel):
    instance_id: str
    ssm_managed: bool = Field(description="whether SSM manages the instance (DescribeInstanceInformation lists it)")
    online: bool = Field(description="SSM's PingStatus is Online: a command would reach it now")
    ping_status: str | None
    digest: str | None = Field(description="what it runs as far as berth knows (the ends of its deployments); null: "
                                           "unknown")
    reported_by: str | None = Field(description="the deployment that put it there")
    behind: bool = Field(description="not known to run the target's current digest: a sync would send to it")


class PlannedWaveView(BaseModel):
    instances: list[str]
    bake_seconds: int = Field(description="seconds the alarms are watched after the wave passed")


class AlarmView(BaseModel):
    name: str
    state: str = Field(description="OK, ALARM, INSUFFICIENT_DATA, or MISSING when no metric alarm has the name")
    reason: str


class RefusalView(BaseModel):
    code: str = Field(description="TargetBusy, BreakerOpen, ImageUnresolved, NoOnlineInstance, AlarmMissing or "
                                  "AlarmFiring")
    message: str


class PlannedReleaseView(BaseModel):
    command: list[str]
    timeout_seconds: int
    instance_id: str | None = Field(description="where it would run: the first Online instance by id; null when none "
                                                "is Online (the deployment would fail, nothing swapped)")
    ran_in: str | None = Field(description="the deployment whose release task already succeeded for this digest and "
                                           "command: it would not run again; null: it runs before any swap")


class PlanView(BaseModel):
    """What a deployment of the target would do now. Nothing was sent, written or locked to answer."""

    target: str
    revision: RevisionView | None = Field(description="the image a redeploy would ship, pinned to its digest; null "
                                                      "when it does not resolve (see refusals)")
    current_revision: RevisionView | None
    instances: list[PlannedInstanceView] = Field(description="the running instances the target's spec matches")
    in_waves: bool = Field(description="waves by instance id (rollout.canary, rollout.alarms or load_balancer), or one "
                                       "SSM command over the target rate controlled by max_concurrency")
    target_group_arns: list[str] = Field(default_factory=list, description=(
        "the target groups each batch is drained out of before its swap and registered in again after it"))
    max_concurrency: str
    max_errors: str
    waves: list[PlannedWaveView]
    alarms: list[AlarmView]
    refusals: list[RefusalView] = Field(description="everything that would refuse the deployment now; empty: it "
                                                    "would start")
    release: PlannedReleaseView | None = Field(default=None, exclude_if=lambda value: value is None, description=(
        "the spec's release task: run once on one instance, in the new image, before any swap"))

    @classmethod
    def of(cls, plan: Any) -> PlanView:
        return cls(
            target=plan.target, revision=RevisionView.of(plan.revision),
            current_revision=RevisionView.of(plan.current_revision),
            instances=[PlannedInstanceView(instance_id=i.instance_id, ssm_managed=i.ssm_managed, online=i.online,
                                           ping_status=i.ping_status, digest=i.digest, reported_by=i.reported_by,
                                           behind=i.behind)
                       for i in plan.instances],
            in_waves=plan.in_waves, target_group_arns=plan.target_group_arns,
            max_concurrency=plan.rollout.max_concurrency, max_errors=plan.rollout.max_errors,
            waves=[PlannedWaveView(instances=w.instances, bake_seconds=w.bake_seconds) for w in plan.waves],
            alarms=[AlarmView(name=a.name, state=a.state, reason=a.reason) for a in plan.alarms],
            refusals=[RefusalView(code=r.code, message=r.message) for r in plan.refusals],
            release=PlannedReleaseView(command=plan.release.command, timeout_seconds=plan.release.timeout_seconds,
                                       instance_id=plan.release.instance_id, ran_in=plan.release.ran_in)
            if plan.release is not None else None)


class ErrorDetail(BaseModel):
    code: str = Field(description="the error's name, e.g. TargetBusy, InvalidRequest, TargetNotFound")
    message: str
    field: str | None = Field(default=None, description="the request field to fix, as a dotted path")


class ErrorBody(BaseModel):
    error: ErrorDetail


class OpenApiDocument(BaseModel):
    """This API's OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]

    @classmethod
    def of(cls, document: dict[str, Any]) -> OpenApiDocument:
        return cls.model_validate(document)


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
