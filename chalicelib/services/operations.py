"""What engineers do through the REST API and the CLI: register targets, redeploy, roll back, cancel, read state.

Every deployment goes through the same DeploymentService as the pipeline action, so validation, the lock and the
record are the same whoever starts it. A person's redeploy or rollback is also the only thing that closes an open
circuit breaker, and only when asked (`reset_breaker`): the breaker exists so nobody redeploys a broken target by
reflex.

History pages are the store's cursors, handed to callers as the `next` token: opaque to them, and checked by the store
on the way back in, so a forged or truncated token is a 400 naming `next`, never a DynamoDB error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.audit import AuditFilter, plan_audit
from chalicelib.domain.deployment import Deployment, DeploymentStatus, Revision
from chalicelib.domain.errors import (
    ArchitectureMismatch,
    AwsCallFailed,
    BreakerOpen,
    Conflict,
    DeploymentFinished,
    DeploymentNotFound,
    InvalidCursor,
    InvalidRequest,
    InvalidRevision,
    NothingToRollBack,
    NothingToSync,
    ScanFindings,
    ScanPending,
    TargetBusy,
    TargetNotFound,
)
from chalicelib.domain.fleet import left_behind
from chalicelib.domain.freeze import MAX_FREEZE, Freeze, in_force, refuse_unless_overridden
from chalicelib.domain.release import ReleasePhase
from chalicelib.domain.rollout import MAX_WAVE
from chalicelib.domain.spec import TargetSpec, Trigger
from chalicelib.domain.target import Lock, TargetRecord
from chalicelib.services.deployments import DeploymentService, Followed
from chalicelib.services.notifier import Notifier
from chalicelib.services.places import Located, placed_instances, placed_ssm

logger = logging.getLogger(__name__)
ROLLBACK_SEARCH_PAGES = 5          # how far back (pages of 50) a rollback looks for the previous good revision


@dataclass(frozen=True)
class TargetState:
    """A target as an engineer sees it: its record, who holds its lock, and its newest deployment."""

    name: str
    record: TargetRecord
    lock: Lock | None
    last_deployment: Deployment | None
    freeze_in_force: bool = False


@dataclass(frozen=True)
class Synced:
    """A sync started: its deployment, and the instances behind that it leaves for another sync."""

    deployment: Deployment
    remaining: int                  # running and behind, beyond the first MAX_WAVE sent now
    not_running: list[str]          # behind, but not running now (stopped or gone): nothing can reach them


@dataclass(frozen=True)
class HistoryPage:
    deployments: list[Deployment]
    next_token: str | None


class Operations:
    def __init__(self, store: DeploymentStore, deployments: DeploymentService, ssm: SsmGateway,
                 clock: Callable[[], datetime], instances: InstanceDirectory | None = None,
                 notifier: Notifier | None = None, located: Located | None = None) -> None:
        """Without `instances`, a sync takes every instance behind to be running."""
        self._notifier = notifier or Notifier()
        self._store = store
        self._deployments = deployments
        self._ssm = placed_ssm(ssm, located)
        self._clock = clock
        self._instances = placed_instances(instances, located) if instances is not None else None

    # targets -------------------------------------------------------------------------------------------------
    def register_target(self, spec: TargetSpec, caller: str) -> TargetState:
        self._store.put_target(spec, caller)
        return self.target(spec.target)

    def targets(self) -> list[tuple[str, TargetRecord]]:
        return self._store.list_targets()

    def target(self, name: str) -> TargetState:
        record = self._record(name)
        lock = self._store.get_lock(name)
        if lock is not None and lock.expires_at < self._clock().timestamp():
            lock = None
        newest, _ = self._store.list_deployments(name, limit=1)
        return TargetState(name, record, lock, newest[0] if newest else None,
                           in_force(record.freeze, self._clock()) is not None)

    def freeze(self, name: str, reason: str, until: datetime | None, caller: str) -> TargetState:
        """Freeze the target (domain/freeze.py); a freeze already in force is replaced by this one."""
        self._record(name)
        now = self._clock()
        if until is not None and until <= now:
            raise InvalidRequest(f"until: {until.isoformat()} is not in the future", field="until")
        if until is not None and until > now + MAX_FREEZE:
            raise InvalidRequest(f"until: at most {MAX_FREEZE.days} days ahead; leave it out for a freeze that lasts "
                                 "until someone unfreezes the target", field="until")
        self._store.freeze_target(name, Freeze(reason, caller, now, until))
        self._notifier.frozen(name, reason, caller, until, now)
        return self.target(name)

    def unfreeze(self, name: str, caller: str) -> TargetState:
        record = self._record(name)
        self._store.unfreeze_target(name)
        if record.freeze is not None:
            self._notifier.unfrozen(name, caller, self._clock())
        return self.target(name)

    # deployments ---------------------------------------------------------------------------------------------
    def redeploy(self, name: str, image: str | None, reason: str | None, reset_breaker: bool,
                 caller: str, override_freeze: str | None = None) -> Deployment:
        """Deploy `image`, or the target's current revision again (by digest) when no image is given."""
        record = self._record(name)
        self._refuse_busy(name)
        overridden = refuse_unless_overridden(name, record.freeze, override_freeze, self._clock())
        if image is not None:
            revision = self._resolve(record.spec, image)
        elif record.current_revision is not None:
            revision = record.current_revision
        elif record.spec.image is not None:
            revision = self._resolve(record.spec, record.spec.image)
        else:
            raise InvalidRequest(f"target {name!r} has no current revision and its spec names no image: "
                                 "give the image to deploy", field="image")
        return self._start(record, revision, "api", caller, reset_breaker, reason, overridden)

    def rollback(self, name: str, to: str | None, reason: str | None, reset_breaker: bool,
                 caller: str, override_freeze: str | None = None) -> Deployment:
        """Deploy the newest successful revision other than the current one (or the one deployment `to` shipped)."""
        record = self._record(name)
        self._refuse_busy(name)
        overridden = refuse_unless_overridden(name, record.freeze, override_freeze, self._clock())
        revision = self._deployed_by(name, to) if to is not None else self._previous_good(name, record)
        return self._start(record, revision, "rollback", caller, reset_breaker, reason, overridden)

    def sync(self, name: str, reason: str | None, caller: str, override_freeze: str | None = None) -> Synced:
        """Bring the instances left behind (domain/fleet.py) to the target's current revision, and those only: one
        command by instance id to the first MAX_WAVE that are running (SendCommand's InstanceIds bound), trigger
        "sync". Refused as a redeploy is when the target is busy or its breaker open, and NothingToSync when there is
        no current revision or no running instance behind it."""
        record = self._record(name)
        self._refuse_busy(name)
        overridden = refuse_unless_overridden(name, record.freeze, override_freeze, self._clock())
        revision = record.current_revision
        if revision is None:
            raise NothingToSync(f"target {name!r} has no current revision to sync to: deploy one first")
        if revision.digest is None:
            raise NothingToSync(f"target {name!r}: its current revision {revision.image} has no known digest, so berth "
                                "cannot tell which instances run it; redeploy it instead")
        behind = left_behind(record.fleet, revision)
        running = (sorted(self._instances.of_spec(record.spec).running_among(behind)) if self._instances and behind
                   else behind)
        if not running:
            stopped = f" ({len(behind)} behind are not running: {', '.join(behind[:20])})" if behind else ""
            raise NothingToSync(f"target {name!r}: no running instance is behind its current revision "
                                f"{revision.pinned} as far as berth knows{stopped}")
        now = running[:MAX_WAVE]
        started = self._start(replace(record, spec=record.spec.on_instances(now)), revision, "sync", caller,
                              False, reason, overridden)
        return Synced(started, len(running) - len(now), sorted(set(behind) - set(running)))

    def deployment(self, deployment_id: str) -> Followed:
        """The deployment, refreshed from SSM while it runs, so API-started deployments progress on their own."""
        try:
            return self._deployments.follow(deployment_id)
        except (AwsCallFailed, Conflict) as exc:
            logger.warning("could not refresh the deployment; answering from the record",
                           extra={"deployment_id": deployment_id, "error": exc.message})
            return Followed(self._store.get_deployment(deployment_id), None)

    def history(self, name: str, limit: int, token: str | None) -> HistoryPage:
        self._record(name)
        try:
            deployments, cursor = self._store.list_deployments(name, limit, token)
        except InvalidCursor:
            raise InvalidRequest("'next' is not a page token berth gave for this target's history",
                                 field="next") from None
        return HistoryPage(deployments, cursor)

    def search_history(self, wanted: AuditFilter, limit: int, token: str | None) -> HistoryPage:
        """Deployments across targets, newest first, picked by caller, digest, time, target and status (an index
        answers; domain/audit.py decides which)."""
        try:
            deployments, cursor = self._store.search_deployments(plan_audit(wanted, self._clock()), limit, token)
        except InvalidCursor:
            raise InvalidRequest("'next' is not a page token berth gave for history with these filters",
                                 field="next") from None
        return HistoryPage(deployments, cursor)

    def cancel(self, deployment_id: str, caller: str, reason: str | None = None) -> Deployment:
        """Cancel the running SSM command, mark the deployment CANCELLED and release the target's lock."""
        deployment = self._store.get_deployment(deployment_id)
        if deployment.status == DeploymentStatus.CANCELLED:
            # A cancel that failed after closing the record may have left the lock: asking again frees it.
            self._store.release_lock(deployment.target, deployment_id)
        self._refuse_final(deployment)
        self._deployments.put_batch_back(deployment)     # never left out of its load balancer
        attempt = deployment.current_attempt
        if attempt is not None and attempt.command_id and attempt.ended_at is None:
            self._ssm.of(deployment).cancel(attempt.command_id)
        release = deployment.release
        if attempt is None and release is not None and release.phase == ReleasePhase.RELEASING and release.command_id:
            self._ssm.of(deployment).cancel(release.command_id)      # a release task still running is stopped too
        message = f"cancelled by {caller}" + (f": {reason}" if reason else "")
        for _ in range(3):  # a concurrent refresh may save first; re-read and try again
            try:
                cancelled = self._store.save_deployment(transitions.cancelled(deployment, message, self._clock()))
                break
            except Conflict:
                deployment = self._store.get_deployment(deployment_id)
                self._refuse_final(deployment)
        else:
            raise Conflict(f"deployment {deployment_id} kept changing while it was being cancelled; try again")
        self._store.release_lock(deployment.target, deployment_id)
        return cancelled

    # helpers -------------------------------------------------------------------------------------------------
    def _record(self, name: str) -> TargetRecord:
        record = self._store.get_target(name)
        if record is None:
            raise TargetNotFound(f"target {name!r} is not registered: register it with PUT /targets/{name}")
        return record

    def _refuse_busy(self, name: str) -> None:
        """Busy is the first answer: it does not depend on the body, and a refused request must reset no breaker.
        (DeploymentService.start still takes the lock atomically; this only answers early.)"""
        lock = self._store.get_lock(name)
        if lock is not None and lock.expires_at >= self._clock().timestamp():
            raise TargetBusy(name, lock.deployment_id)

    def _resolve(self, spec: TargetSpec, image: str) -> Revision:
        try:
            return self._deployments.resolve_revision(spec, image)
        except (ArchitectureMismatch, ScanFindings, ScanPending):
            raise       # 409s of their own, naming the field "image": the image is fine, the target refuses it
        except InvalidRevision as exc:
            raise InvalidRequest(exc.message, field="image") from None

    def _start(self, record: TargetRecord, revision: Revision, trigger: Trigger, caller: str, reset_breaker: bool,
               reason: str | None, overridden: str | None = None) -> Deployment:
        name = record.spec.target
        notes = []
        if record.breaker_open_since is not None:
            if not reset_breaker:
                opened = datetime.fromtimestamp(record.breaker_open_since, UTC).isoformat()
                raise BreakerOpen(
                    f"target {name!r} has its circuit breaker open since {opened} after "
                    f"{len(record.recent_failures)} recent failures: automatic deployments are stopped. Deploy with "
                    '"reset_breaker": true (berth deploy --reset-breaker) to close it and deploy')
            self._store.reset_breaker(name, caller)
            notes.append(("breaker-reset", f"circuit breaker reset by {caller}"))
        deployment = self._deployments.start(record.spec, revision, trigger, caller)
        if reason:
            notes.append(("reason", reason))
        if overridden:
            notes.append(("freeze-overridden", f"{overridden}, by {caller}"))
        return self._note(deployment, notes, trigger) if notes else deployment

    def _note(self, deployment: Deployment, notes: list[tuple[str, str]], cause: str) -> Deployment:
        """Add why and how the deployment was asked for to its history (best effort: a refresh may have saved)."""
        now = self._clock()
        try:
            return self._store.save_deployment(transitions.noted(deployment, notes, cause, now))
        except (Conflict, AwsCallFailed):
            # The deployment has started: its caller gets 202 and its id whatever happens to the notes.
            logger.warning("deployment changed before its request notes were saved",
                           extra={"deployment_id": deployment.deployment_id})
            return deployment

    def _deployed_by(self, name: str, deployment_id: str) -> Revision:
        try:
            chosen = self._store.get_deployment(deployment_id)
        except DeploymentNotFound:
            raise InvalidRequest(f"no deployment {deployment_id!r} to roll back to", field="to") from None
        if chosen.target != name or chosen.status != DeploymentStatus.SUCCEEDED:
            raise InvalidRequest(f"deployment {deployment_id} is not a succeeded deployment of target {name!r} "
                                 f"(it is a {chosen.status.value} deployment of {chosen.target!r})", field="to")
        return chosen.revision

    def _previous_good(self, name: str, record: TargetRecord) -> Revision:
        current = record.current_revision
        cursor: str | None = None
        for _ in range(ROLLBACK_SEARCH_PAGES):
            page, cursor = self._store.list_deployments(name, limit=50, cursor=cursor)
            for deployment in page:
                revision = deployment.revision
                if deployment.status == DeploymentStatus.SUCCEEDED and revision.digest and \
                        not _same_revision(revision, current):
                    return revision
            if not cursor:
                break
        raise NothingToRollBack(
            f"target {name!r} has nothing to roll back to: no earlier successful deployment with a known digest "
            f"differs from the current revision ({current.pinned if current else 'none'})")

    @staticmethod
    def _refuse_final(deployment: Deployment) -> None:
        if deployment.status.is_final:
            raise DeploymentFinished(f"deployment {deployment.deployment_id} already ended "
                                     f"({deployment.status.value}); there is nothing to cancel")


def _same_revision(revision: Revision, current: Revision | None) -> bool:
    if current is None:
        return False
    if revision.digest and current.digest:
        return revision.digest == current.digest
    return revision.pinned == current.pinned

