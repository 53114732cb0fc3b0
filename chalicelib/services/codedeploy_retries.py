"""Retrying failed CodeDeploy EC2 deployments: decided when the FAILURE is recorded, carried out when it is due.

The decision goes through the one retry path (chalicelib.services.retries). A retry is `CreateDeployment` with the
failed deployment's revision, after a backoff; a remediable failure (Docker missing) first runs install_docker.sh on
the failed instances through SSM. The record's `decided` flag is set by a version-checked write before anything is
scheduled, so duplicate or concurrent deliveries of one failure act once; the schedule name is deterministic per
lineage and attempt, a second guard.

When the schedule fires, the retry gives up (recorded, with the reason) if the group had any deployment created
after the failed one (a newer revision, CodeDeploy's own rollback), or berth started one on the group's target since:
redeploying the failed revision would undo it. CreateDeployment has no idempotency token: it is made once, and an
unanswered one is looked for by the retry's description rather than made again.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.adapters.codedeploy import CodeDeployGateway, CodeDeployInfo, InstanceFailure
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.command import build_install_docker_commands
from chalicelib.domain.deployment import CodeDeployRecord
from chalicelib.domain.errors import CallUnanswered, Conflict
from chalicelib.domain.exit_codes import FailureClass
from chalicelib.domain.progress import FINAL_INVOCATION_STATUSES
from chalicelib.domain.retry import Failure, GiveUp, Retry, RetryDecision, classify_signal, schedule_name
from chalicelib.domain.retry_payload import CodeDeployRetry
from chalicelib.domain.spec import InstancesSpec, RolloutSpec
from chalicelib.observability import Telemetry
from chalicelib.services.outcome import Outcome
from chalicelib.services.retries import Retrier, RetryCase

RECORD_DAYS = 30
# How often a retry waits for its remediation command before giving up on it.
MAX_REMEDIATION_WAITS = 5
REMEDIATION_WAIT = timedelta(seconds=60)
_RETRY_DESCRIPTION = re.compile(r"^berth retry (?P<attempt>[0-9]+) of (?P<lineage>\S+)$")


def retry_description(lineage: str, attempt: int) -> str:
    return f"berth retry {attempt} of {lineage}"


def parse_retry_description(description: str) -> tuple[str, int] | None:
    match = _RETRY_DESCRIPTION.match(description)
    return (match.group("lineage"), int(match.group("attempt"))) if match else None


def record_expiry(now: datetime) -> int:
    return int((now + timedelta(days=RECORD_DAYS)).timestamp())


@dataclass(frozen=True)
class Diagnosis:
    """A failed deployment as CodeDeploy describes it: the deployment, its failed instances, their class, and the
    account of it the record keeps."""

    info: CodeDeployInfo
    failures: Sequence[InstanceFailure]
    failure_class: FailureClass
    why: str


class CodeDeployRetrier:
    def __init__(self, store: DeploymentStore, codedeploy: CodeDeployGateway, ssm: SsmGateway, retrier: Retrier,
                 scripts: dict[str, str], clock: Callable[[], datetime], telemetry: Telemetry | None = None) -> None:
        self._store = store
        self._codedeploy = codedeploy
        self._ssm = ssm
        self._retrier = retrier
        self._scripts = scripts
        self._clock = clock
        self._telemetry = telemetry or Telemetry()

    def on_failure(self, record: CodeDeployRecord, diagnosis: Diagnosis, now: datetime) -> Outcome:
        """Decide what follows a recorded FAILURE, and schedule or give up (once: see the module)."""
        info = diagnosis.info
        return self._retrier.handle(_FailedDeployment(
            failure=Failure(diagnosis.failure_class, info.is_rollback, info.stopped_by_person),
            attempts_made=record.attempt, lineage=record.lineage, target=record.target, budget=None,
            retrier=self, record=record, diagnosis=diagnosis), now)

    def _claim(self, record: CodeDeployRecord, now: datetime) -> CodeDeployRecord:
        # Claim the decision first (version-checked), then act: a duplicate delivery loses here and does nothing.
        return self._store.save_codedeploy(transitions.decision_claimed(record), record_expiry(now))

    def _remediate(self, failures: Sequence[InstanceFailure], deployment_id: str) -> list[str]:
        """install_docker.sh on the instances that lack Docker, up to 50 a command."""
        instance_ids = sorted({f.instance_id for f in failures
                               if classify_signal(f.signal) == FailureClass.REMEDIABLE and f.instance_id})
        commands = build_install_docker_commands(f"Docker missing in CodeDeploy deployment {deployment_id}",
                                                 self._scripts)
        sent = []
        for start in range(0, len(instance_ids), 50):
            batch = InstancesSpec(ids=instance_ids[start:start + 50])
            sent.append(self._ssm.send_deploy_command(batch, commands, RolloutSpec(max_concurrency="100%",
                                                                                   max_errors="100%"),
                                                      comment=f"berth remediation for {deployment_id}"))
        return sent

    def _save(self, record: CodeDeployRecord, now: datetime) -> CodeDeployRecord:
        return self._store.save_codedeploy(record, record_expiry(now))

    def retry(self, task: CodeDeployRetry) -> Outcome:
        """Carry out a scheduled retry: wait for remediation, then CreateDeployment with the same revision."""
        now = self._clock()
        record = self._store.get_codedeploy(task.deployment_id)
        if record is None or record.retried_as is not None:
            return Outcome("duplicate", "already retried" if record else "no such record")
        if record.history and record.history[-1].action == "gave-up":
            return Outcome("duplicate", "this retry was given up already")
        invocations = [inv for command in record.remediation_commands for inv in self._ssm.list_invocations(command)]
        if any(inv.status not in FINAL_INVOCATION_STATUSES for inv in invocations):
            if task.wait < MAX_REMEDIATION_WAITS and self._retrier.schedules:
                waiting = task.waited()
                self._retrier.schedule(schedule_name(record.lineage, task.attempt, wait=waiting.wait),
                                       now + REMEDIATION_WAIT, waiting, now)
                return Outcome("waiting", "Docker installation still running")
        failed = [f"{inv.instance_id} {inv.status} exit {inv.response_code}" for inv in invocations
                  if inv.status != "Success" or inv.response_code not in (0, None)]
        if failed or (record.remediation_commands and not invocations):
            reason = f"installing Docker failed or did not finish: {'; '.join(failed) or 'no instance ran it'}"
            return self._gave_up(record, reason, "remediation", now)
        info = self._codedeploy.deployment(task.deployment_id)
        newer = self._newer_deployment(record, info)
        cause = f"schedule for attempt {task.attempt}"
        if newer is not None:      # the failure was counted when the retry was scheduled: not again
            return self._gave_up(record, newer, cause, now, count_failure=False)
        claimed = self._save(transitions.retry_claimed(record), now)
        description = retry_description(record.lineage, task.attempt)
        try:
            new_id = self._codedeploy.create_deployment(info.application, info.group, info.revision, description)
        except Conflict as exc:
            return self._gave_up(claimed, exc.message, "CreateDeployment", now)
        except CallUnanswered as exc:
            found = self._codedeploy.find_by_description(info.application, info.group, info.create_time or 0.0,
                                                         description)
            if found is None:
                # Not listed (yet): it may still appear. Never created twice: the claim stays, and its first event
                # records it along the lineage by its description.
                self._save(transitions.retry_unanswered(
                    claimed, f"{exc.message}; no deployment described {description!r} is listed yet, and none is "
                             "created again", cause, now), now)
                return Outcome("waiting", f"CreateDeployment went unanswered ({exc.message})")
            new_id = found
        self._save(transitions.retried(claimed, new_id, cause, now), now)
        with contextlib.suppress(Conflict):    # its own first event may have recorded it already
            self._save(CodeDeployRecord(deployment_id=new_id, application=info.application, group=info.group,
                                        target=record.target, lineage=record.lineage, attempt=task.attempt), now)
        return Outcome("retried", f"CodeDeploy deployment {new_id} created with the same revision")

    def _gave_up(self, record: CodeDeployRecord, reason: str, cause: str, now: datetime,
                 count_failure: bool = True) -> Outcome:
        """A scheduled retry that cannot be carried out."""
        self._save(transitions.codedeploy_gave_up(record, reason, cause, now), now)
        if record.target and count_failure:
            self._retrier.record_failure(record.target, now, open_breaker=False)
        self._telemetry.count("RetriesGivenUp")
        return Outcome("gave-up", reason)

    def _newer_deployment(self, record: CodeDeployRecord, info: CodeDeployInfo) -> str | None:
        """Why redeploying the failed revision would undo something newer, or None: a deployment of the group created
        after the failed one, or a berth deployment of the group's target started after it."""
        if info.create_time is None:
            return None
        newer = [other for other in self._codedeploy.deployments_since(info.application, info.group, info.create_time)
                 if other != info.deployment_id]
        if newer:
            return (f"the deployment group had a newer deployment since ({', '.join(sorted(newer)[:5])}); "
                    f"redeploying {info.deployment_id}'s revision would undo it")
        latest = self._store.latest_start(record.target) if record.target else None
        if latest is not None and latest.started_at_us > info.create_time * 1_000_000:
            return (f"berth deployed target {record.target} since (deployment {latest.deployment_id}); redeploying "
                    f"{info.deployment_id}'s revision would undo it")
        return None


@dataclass
class _FailedDeployment(RetryCase[Outcome]):
    """A failed CodeDeploy deployment: retried as a new deployment of the same revision, after installing Docker
    where it was missing."""

    retrier: CodeDeployRetrier
    record: CodeDeployRecord
    diagnosis: Diagnosis
    commands: list[str] = field(default_factory=list)

    def hold(self, decision: RetryDecision, now: datetime) -> RetryDecision:
        # The claimed record (its new version) is the one settle writes on.
        self.record = self.retrier._claim(self.record, now)
        if isinstance(decision, Retry) and decision.remediate_first:
            self.commands = self.retrier._remediate(self.diagnosis.failures, self.record.deployment_id)
        return decision

    def task(self, retry: Retry) -> CodeDeployRetry:
        return CodeDeployRetry(deployment_id=self.record.deployment_id, attempt=retry.attempt)

    def settle(self, decision: RetryDecision, schedule: str, now: datetime) -> Outcome:
        why = self.diagnosis.why
        if isinstance(decision, GiveUp):
            self.retrier._save(transitions.codedeploy_gave_up(self.record, decision.reason, why, now), now)
            return Outcome("gave-up", decision.reason)
        detail = f"attempt {decision.attempt} at {decision.at.isoformat()} (schedule {schedule}): {decision.reason}"
        if self.commands:
            detail += f"; install_docker.sh sent as SSM command(s) {', '.join(self.commands)}"
        self.retrier._save(transitions.codedeploy_retry_scheduled(self.record, self.commands, detail, why, now), now)
        return Outcome("retry-scheduled", detail)
