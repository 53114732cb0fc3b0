"""Following CodeDeploy EC2 deployments through EventBridge: record every state, and act once on each failure.

On FAILURE berth reads the failed instances' lifecycle diagnostics, classifies the failure and decides (pure domain
code). A retry is `CreateDeployment` with the failed deployment's revision, after a backoff; a remediable failure
(Docker missing) first runs install_docker.sh on the failed instances through SSM. The record's `decided` flag is
set by a version-checked write, so duplicate or concurrent deliveries of one failure act once; the schedule name is
deterministic per lineage and attempt, a second guard.

When the schedule fires, the retry gives up (recorded, with the reason) if the group had any deployment created
after the failed one (a newer revision, CodeDeploy's own rollback), or berth started one on the group's target since:
redeploying the failed revision would undo it. CreateDeployment has no idempotency token: it is made once, and an
unanswered one is looked for by the retry's description rather than made again.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.codedeploy import CodeDeployGateway, CodeDeployInfo
from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.command import build_install_docker_commands
from chalicelib.domain.deployment import CodeDeployRecord, after_state_event
from chalicelib.domain.errors import CallUnanswered, Conflict, ScheduleTaken
from chalicelib.domain.events import FINAL_DEPLOYMENT_STATES, CodeDeployEvent
from chalicelib.domain.exit_codes import FailureClass
from chalicelib.domain.progress import FINAL_INVOCATION_STATUSES
from chalicelib.domain.retry import (
    GiveUp,
    Retry,
    RetryPolicy,
    classify_failure,
    classify_signal,
    plan_retry,
    schedule_name,
)
from chalicelib.domain.spec import InstancesSpec, RetrySpec, RolloutSpec
from chalicelib.observability import Telemetry
from chalicelib.services.retries import BreakerPolicy

logger = logging.getLogger(__name__)
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


@dataclass(frozen=True)
class Outcome:
    action: str          # "recorded", "ignored", "duplicate", "retry-scheduled", "gave-up", "retried", "waiting"
    detail: str = ""


class CodeDeployFollower:
    def __init__(self, store: DeploymentStore, codedeploy: CodeDeployGateway, ssm: SsmGateway,
                 scheduler: RetryScheduler | None, scripts: dict[str, str], clock: Callable[[], datetime],
                 rng: Callable[[float, float], float], managed_groups: frozenset[tuple[str, str]],
                 breaker: BreakerPolicy, telemetry: Telemetry | None = None) -> None:
        self._store = store
        self._codedeploy = codedeploy
        self._ssm = ssm
        self._scheduler = scheduler
        self._scripts = scripts
        self._clock = clock
        self._rng = rng
        self._managed = managed_groups
        self._breaker = breaker
        self._telemetry = telemetry or Telemetry()

    def on_event(self, event: CodeDeployEvent) -> Outcome:
        detail = event.detail
        target = self._store.find_codedeploy_target(detail.application, detail.deployment_group)
        if target is None and (detail.application, detail.deployment_group) not in self._managed:
            return Outcome("ignored", f"{detail.application}/{detail.deployment_group} is not managed by berth")
        for _ in range(3):       # a concurrent writer wins at most a couple of times; then the event is retried
            try:
                return self._record(event, target.spec.target if target else None)
            except Conflict:
                continue
        raise Conflict(f"CodeDeploy record {detail.deployment_id} kept changing; EventBridge will deliver again")

    def _record(self, event: CodeDeployEvent, target: str | None) -> Outcome:
        detail = event.detail
        now = self._clock()
        record = self._store.get_codedeploy(detail.deployment_id) or CodeDeployRecord(
            deployment_id=detail.deployment_id, application=detail.application, group=detail.deployment_group,
            target=target, lineage=detail.deployment_id)
        if event.id in record.seen_events:
            return Outcome("duplicate", f"event {event.id} was recorded already")
        record = after_state_event(record, event.id, detail.state, detail.instance_id, event.is_instance_event, now)
        where = f"instance {detail.instance_id}" if event.is_instance_event else "deployment"
        if event.is_instance_event or detail.state != "FAILURE" or record.decided:
            self._store.save_codedeploy(record, self._expiry(now))
            return Outcome("recorded", f"{where} {detail.state}")
        return self._decide(record, now, event.id)

    def _decide(self, record: CodeDeployRecord, now: datetime, cause: str) -> Outcome:
        info = self._codedeploy.deployment(record.deployment_id)
        lineage = parse_retry_description(info.description)
        if lineage is not None:
            # berth created this deployment as a retry: its attempt counts along the original's lineage, even when
            # its first event arrived before berth recorded it.
            record = transitions.lineage_found(record, lineage[0], lineage[1])
        failures = self._codedeploy.failed_instances(record.deployment_id)
        failure = classify_failure(f.signal for f in failures)
        target = self._store.get_target(record.target) if record.target else None
        retry = target.spec.retry if target else RetrySpec()
        policy = RetryPolicy(retry.max_attempts, retry.base_seconds, retry.cap_seconds, self._breaker.threshold,
                             self._breaker.window_seconds)
        recent = [*(target.recent_failures if target else ()), int(now.timestamp())]
        decision = plan_retry(failure, record.attempt, policy, is_rollback=info.is_rollback,
                              stopped_by_person=info.stopped_by_person,
                              breaker_open=bool(target and target.breaker_open_since), recent_failures=recent,
                              now=now, rng=self._rng)
        if isinstance(decision, Retry) and self._scheduler is None:
            decision = GiveUp("automatic retries are not configured")
        diagnosis = "; ".join(f"{f.instance_id} {f.lifecycle_event} {f.signal.script_name} {f.signal.error_code}: "
                              f"{f.signal.text.strip()[-200:]}" for f in failures[:5]) or info.error_message
        why = f"FAILURE ({failure.value}) after {cause}: {diagnosis}"[:1500]
        # Claim the decision first (version-checked), then act: a duplicate delivery loses here and does nothing.
        claimed = self._store.save_codedeploy(transitions.decision_claimed(record), self._expiry(now))
        if isinstance(decision, GiveUp):
            return self._gave_up(claimed, decision, why, now)
        commands: list[str] = []
        if decision.remediate_first:
            docker_missing = sorted({f.instance_id for f in failures
                                     if classify_signal(f.signal) == FailureClass.REMEDIABLE and f.instance_id})
            commands = self._remediate(docker_missing, record.deployment_id)
        assert self._scheduler is not None
        name = schedule_name(record.lineage, decision.attempt)
        try:
            self._scheduler.schedule(name, decision.at, {"kind": "codedeploy", "deployment_id": record.deployment_id,
                                                         "attempt": decision.attempt}, now)
        except ScheduleTaken as exc:
            return self._gave_up(claimed, GiveUp(exc.message), why, now)
        detail = f"attempt {decision.attempt} at {decision.at.isoformat()} (schedule {name}): {decision.reason}"
        if commands:
            detail += f"; install_docker.sh sent as SSM command(s) {', '.join(commands)}"
        self._store.save_codedeploy(transitions.codedeploy_retry_scheduled(claimed, commands, detail, why, now),
                                    self._expiry(now))
        if record.target:
            self._record_failure(record.target, now, open_breaker=False)
        self._telemetry.count("RetriesScheduled")
        return Outcome("retry-scheduled", detail)

    def _gave_up(self, record: CodeDeployRecord, decision: GiveUp, why: str, now: datetime,
                 count_failure: bool = True) -> Outcome:
        self._store.save_codedeploy(transitions.codedeploy_gave_up(record, decision.reason, why, now),
                                    self._expiry(now))
        if record.target and count_failure:
            self._record_failure(record.target, now, decision.open_breaker)
        self._telemetry.count("RetriesGivenUp")
        return Outcome("gave-up", decision.reason)

    def _remediate(self, instance_ids: list[str], deployment_id: str) -> list[str]:
        commands = build_install_docker_commands(f"Docker missing in CodeDeploy deployment {deployment_id}",
                                                 self._scripts)
        sent = []
        for start in range(0, len(instance_ids), 50):
            batch = InstancesSpec(ids=instance_ids[start:start + 50])
            sent.append(self._ssm.send_deploy_command(batch, commands, RolloutSpec(max_concurrency="100%",
                                                                                   max_errors="100%"),
                                                      comment=f"berth remediation for {deployment_id}"))
        return sent

    def retry(self, deployment_id: str, attempt: int, wait: int = 0) -> Outcome:
        """Carry out a scheduled retry: wait for remediation, then CreateDeployment with the same revision."""
        now = self._clock()
        record = self._store.get_codedeploy(deployment_id)
        if record is None or record.retried_as is not None:
            return Outcome("duplicate", "already retried" if record else "no such record")
        if record.history and record.history[-1].action == "gave-up":
            return Outcome("duplicate", "this retry was given up already")
        invocations = [inv for command in record.remediation_commands for inv in self._ssm.list_invocations(command)]
        if any(inv.status not in FINAL_INVOCATION_STATUSES for inv in invocations):
            if wait < MAX_REMEDIATION_WAITS and self._scheduler is not None:
                self._scheduler.schedule(schedule_name(record.lineage, attempt, wait=wait + 1),
                                         now + REMEDIATION_WAIT, {"kind": "codedeploy", "deployment_id": deployment_id,
                                                                  "attempt": attempt, "wait": wait + 1}, now)
                return Outcome("waiting", "Docker installation still running")
        failed = [f"{inv.instance_id} {inv.status} exit {inv.response_code}" for inv in invocations
                  if inv.status != "Success" or inv.response_code not in (0, None)]
        if failed or (record.remediation_commands and not invocations):
            reason = f"installing Docker failed or did not finish: {'; '.join(failed) or 'no instance ran it'}"
            return self._gave_up(record, GiveUp(reason), "remediation", now)
        info: CodeDeployInfo = self._codedeploy.deployment(deployment_id)
        newer = self._newer_deployment(record, info)
        if newer is not None:      # the failure was counted when the retry was scheduled: not again
            return self._gave_up(record, GiveUp(newer), f"schedule for attempt {attempt}", now, count_failure=False)
        claimed = self._store.save_codedeploy(transitions.retry_claimed(record), self._expiry(now))
        description = retry_description(record.lineage, attempt)
        try:
            new_id = self._codedeploy.create_deployment(info.application, info.group, info.revision, description)
        except Conflict as exc:
            return self._gave_up(claimed, GiveUp(exc.message), "CreateDeployment", now)
        except CallUnanswered as exc:
            found = self._codedeploy.find_by_description(info.application, info.group, info.create_time or 0.0,
                                                         description)
            if found is None:
                # Not listed (yet): it may still appear. Never created twice: the claim stays, and its first event
                # records it along the lineage by its description.
                self._store.save_codedeploy(transitions.retry_unanswered(
                    claimed, f"{exc.message}; no deployment described {description!r} is listed yet, and none is "
                             "created again", f"schedule for attempt {attempt}", now), self._expiry(now))
                return Outcome("waiting", f"CreateDeployment went unanswered ({exc.message})")
            new_id = found
        self._store.save_codedeploy(transitions.retried(claimed, new_id, f"schedule for attempt {attempt}", now),
                                    self._expiry(now))
        with contextlib.suppress(Conflict):    # its own first event may have recorded it already
            self._store.save_codedeploy(CodeDeployRecord(
                deployment_id=new_id, application=info.application, group=info.group, target=record.target,
                lineage=record.lineage, attempt=attempt), self._expiry(now))
        return Outcome("retried", f"CodeDeploy deployment {new_id} created with the same revision")

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

    def _record_failure(self, target: str, now: datetime, open_breaker: bool) -> None:
        at = int(now.timestamp())
        self._store.record_failure(target, at, keep_after=at - self._breaker.window_seconds, open_breaker=open_breaker)

    @staticmethod
    def _expiry(now: datetime) -> int:
        return int((now + timedelta(days=RECORD_DAYS)).timestamp())

    @staticmethod
    def is_final(state: str) -> bool:
        return state in FINAL_DEPLOYMENT_STATES
