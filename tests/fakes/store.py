"""berth's DynamoDB store in memory, behind the DeploymentStore port: the methods the service tests use.

Covered (tests/contracts/test_store_contract.py): targets (put, get, find by CodeDeploy group, failures and the
breaker), the target's lock and LATEST marker (start_deployment, hold_target, extend, release, settle, abandon),
deployment records with their version guard, job claims, the command index, and the first page of a target's
history. Not covered: CodeDeploy records, claims and counters, list_targets, and history paging after the first
page: those raise NotImplementedError here.

Records are kept as the domain objects they are; the real store writes JSON and reads it back, which
tests/unit and the contract test cover.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Deployment, Revision
from chalicelib.domain.errors import AwsCallFailed, Conflict, DeploymentNotFound, TargetNotFound
from chalicelib.domain.fleet import Fleet
from chalicelib.domain.freeze import Freeze
from chalicelib.domain.spec import TargetSpec
from chalicelib.domain.target import LatestStart, Lock, TargetRecord


@dataclass
class _Target:
    record: TargetRecord
    last_deployment_at: int | None = None      # epoch microseconds of the start of the deployment it records


class FakeDeploymentStore(DeploymentStore):
    def __init__(self) -> None:
        super().__init__(dynamodb_client=None, table_name="berth-fake")
        self.targets: dict[str, _Target] = {}
        self.groups: dict[tuple[str, str], str] = {}
        self.locks: dict[str, Lock] = {}
        self.latest: dict[str, LatestStart] = {}
        self.deployments: dict[str, Deployment] = {}
        self.jobs: dict[str, str] = {}
        self.commands: dict[str, str] = {}

    # targets -------------------------------------------------------------------------------------------------
    def put_target(self, spec: TargetSpec, caller: str) -> None:
        known = self.targets.get(spec.target)
        record = TargetRecord(spec, None, None, caller) if known is None else replace(
            known.record, spec=spec, updated_by=caller)
        self.targets[spec.target] = _Target(record, known.last_deployment_at if known else None)
        if spec.codedeploy is not None:
            self.groups[(spec.codedeploy.application, spec.codedeploy.deployment_group)] = spec.target

    def find_codedeploy_target(self, application: str, group: str) -> TargetRecord | None:
        name = self.groups.get((application, group))
        record = self.get_target(name) if name else None
        if record is None or record.spec.codedeploy is None:
            return None
        same = (record.spec.codedeploy.application, record.spec.codedeploy.deployment_group) == (application, group)
        return record if same else None

    def get_target(self, name: str) -> TargetRecord | None:
        known = self.targets.get(name)
        return known.record if known else None

    def record_failure(self, name: str, at: int, keep_after: int, open_breaker: bool) -> None:
        known = self.targets.get(name)
        if known is None:
            return
        record = known.record
        failures = (*[f for f in record.recent_failures if f >= keep_after], at)
        since = (record.breaker_open_since if record.breaker_open_since is not None else at) if open_breaker else \
            record.breaker_open_since
        known.record = replace(record, recent_failures=failures, breaker_open_since=since)

    def reset_breaker(self, name: str, caller: str) -> None:
        known = self._existing(name, "DynamoDB UpdateItem")
        known.record = replace(known.record, recent_failures=(), breaker_open_since=None, updated_by=caller)

    def freeze_target(self, name: str, freeze: Freeze) -> None:
        known = self._frozen_target(name)
        known.record = replace(known.record, freeze=freeze)

    def unfreeze_target(self, name: str) -> None:
        known = self._frozen_target(name)
        known.record = replace(known.record, freeze=None)

    def _frozen_target(self, name: str) -> _Target:
        known = self.targets.get(name)
        if known is None:
            raise TargetNotFound(f"target {name!r} is not registered")
        return known

    def settle_target(self, name: str, deployment_id: str, revision: Revision | None, started: datetime,
                      fleet: Fleet | None = None) -> bool:
        held = self.locks.get(name)
        known = self.targets.get(name)
        if fleet is not None and known is not None and held is not None and held.deployment_id == deployment_id:
            known.record = replace(known.record, fleet=fleet)
        released = self.release_lock(name, deployment_id)
        at = _micros(started)
        if revision is not None and known is not None and (
                known.last_deployment_at is None or known.last_deployment_at <= at):
            known.record = replace(known.record, current_revision=revision, last_deployment_id=deployment_id)
            known.last_deployment_at = at
        return released

    # locks ---------------------------------------------------------------------------------------------------
    def start_deployment(self, deployment: Deployment, lock_ttl: int, replacing: Lock | None = None) -> Lock | None:
        held = self.locks.get(deployment.target)
        taken_over = replacing is not None and held is not None and (
            (held.deployment_id, held.expires_at) == (replacing.deployment_id, replacing.expires_at))
        if held is not None and not taken_over:
            return held
        if deployment.deployment_id in self.deployments or (deployment.job_id and deployment.job_id in self.jobs):
            raise Conflict(f"deployment {deployment.deployment_id} or job {deployment.job_id} exists already")
        now = int(deployment.created_at.timestamp())
        self.locks[deployment.target] = Lock(deployment.deployment_id, deployment.job_id, now, now + lock_ttl)
        self.latest[deployment.target] = LatestStart(deployment.deployment_id, _micros(deployment.created_at))
        self.deployments[deployment.deployment_id] = deployment
        if deployment.job_id:
            self.jobs[deployment.job_id] = deployment.deployment_id
        return None

    def hold_target(self, target: str, deployment_id: str, job_id: str | None, now: int, expires_at: int) -> bool:
        lock, latest = self.locks.get(target), self.latest.get(target)
        if (lock is not None and lock.deployment_id != deployment_id) or (
                latest is not None and latest.deployment_id != deployment_id):
            return False
        self.locks[target] = Lock(deployment_id, job_id or (lock.job_id if lock else None),
                                  lock.acquired_at if lock else now, expires_at)
        return True

    def latest_start(self, target: str) -> LatestStart | None:
        return self.latest.get(target)

    def abandon_deployment(self, deployment: Deployment) -> None:
        self.deployments.pop(deployment.deployment_id, None)
        if deployment.job_id and self.jobs.get(deployment.job_id) == deployment.deployment_id:
            del self.jobs[deployment.job_id]
        for marks in (self.latest, self.locks):
            mark = marks.get(deployment.target)
            if mark is not None and mark.deployment_id == deployment.deployment_id:
                del marks[deployment.target]

    def extend_lock(self, target: str, deployment_id: str, expires_at: int) -> None:
        lock = self.locks.get(target)
        if lock is not None and lock.deployment_id == deployment_id:
            self.locks[target] = replace(lock, expires_at=expires_at)

    def get_lock(self, target: str) -> Lock | None:
        return self.locks.get(target)

    def release_lock(self, target: str, deployment_id: str) -> bool:
        lock = self.locks.get(target)
        if lock is None or lock.deployment_id != deployment_id:
            return False
        del self.locks[target]
        return True

    # deployments ---------------------------------------------------------------------------------------------
    def save_deployment(self, deployment: Deployment) -> Deployment:
        stored = self.deployments.get(deployment.deployment_id)
        if stored is None or stored.version != deployment.version:
            raise Conflict(f"deployment {deployment.deployment_id} was changed by another writer")
        saved = deployment.model_copy(update={"version": deployment.version + 1})
        self.deployments[deployment.deployment_id] = saved
        return saved

    def get_deployment(self, deployment_id: str) -> Deployment:
        if deployment_id not in self.deployments:
            raise DeploymentNotFound(f"no deployment {deployment_id!r}")
        return self.deployments[deployment_id]

    def list_deployments(self, target: str, limit: int = 20, cursor: str | None = None
                         ) -> tuple[list[Deployment], str | None]:
        if cursor is not None:
            self._not_covered("list_deployments after the first page")
        mine = sorted((d for d in self.deployments.values() if d.target == target),
                      key=lambda d: (d.created_at.isoformat(), d.deployment_id), reverse=True)
        return mine[:limit], (f"fake-page-after-{mine[limit - 1].deployment_id}" if len(mine) > limit else None)

    def find_job(self, job_id: str) -> str | None:
        return self.jobs.get(job_id)

    def index_command(self, command_id: str, deployment_id: str, expires_at: int) -> None:
        self.commands[command_id] = deployment_id

    def find_command(self, command_id: str) -> str | None:
        return self.commands.get(command_id)

    # not covered ---------------------------------------------------------------------------------------------
    def get_codedeploy(self, deployment_id: str) -> NoReturn:
        self._not_covered("get_codedeploy")

    def save_codedeploy(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._not_covered("save_codedeploy")

    def claim(self, key: str, expires_at: int) -> NoReturn:
        self._not_covered("claim")

    def increment(self, key: str, expires_at: int) -> NoReturn:
        self._not_covered("increment")

    def search_deployments(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._not_covered("search_deployments")

    def backfill_audit_keys(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._not_covered("backfill_audit_keys")

    def list_targets(self) -> NoReturn:
        self._not_covered("list_targets")

    def _existing(self, name: str, operation: str) -> _Target:
        known = self.targets.get(name)
        if known is None:
            raise AwsCallFailed(f"{operation} failed with ConditionalCheckFailedException: The conditional request "
                                "failed")
        return known

    @staticmethod
    def _not_covered(what: str) -> NoReturn:
        raise NotImplementedError(f"FakeDeploymentStore does not cover {what}: use the moto-backed store")


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
