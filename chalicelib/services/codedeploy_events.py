"""The codedeploy_events Lambda: follow CodeDeploy EC2 deployments through EventBridge, record every state, and
diagnose each failure once.

Every deployment and instance state change is recorded in the deployment's record (duplicates by their EventBridge
id). On a deployment's FAILURE the recorder reads the failed instances' lifecycle diagnostics, classifies the failure
and hands it to the retrier (chalicelib.services.codedeploy_retries), which decides and schedules. A deployment berth
created as a retry is recognised by its description and recorded along the original's lineage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from chalicelib.adapters.codedeploy import CodeDeployGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.deployment import CodeDeployRecord, after_state_event
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import CodeDeployEvent
from chalicelib.domain.retry import classify_failure
from chalicelib.services.codedeploy_retries import CodeDeployRetrier, Diagnosis, parse_retry_description, record_expiry
from chalicelib.services.outcome import Outcome

logger = logging.getLogger(__name__)


class CodeDeployRecorder:
    def __init__(self, store: DeploymentStore, codedeploy: CodeDeployGateway, retrier: CodeDeployRetrier,
                 clock: Callable[[], datetime], managed_groups: frozenset[tuple[str, str]],
                 home_account: str = "") -> None:
        self._home_account = home_account
        self._store = store
        self._codedeploy = codedeploy
        self._retrier = retrier
        self._clock = clock
        self._managed = managed_groups

    def on_event(self, event: CodeDeployEvent) -> Outcome:
        detail = event.detail
        if self._home_account and event.account and event.account != self._home_account:
            # CodeDeploy stays in berth's own account: a member account's deployment is not berth's to follow.
            logger.warning("a CodeDeploy event from another account: ignored", extra={"account": event.account})
            return Outcome("ignored", f"CodeDeploy events are followed in berth's own account, not {event.account}")
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
            self._store.save_codedeploy(record, record_expiry(now))
            return Outcome("recorded", f"{where} {detail.state}")
        return self._failed(record, now, event.id)

    def _failed(self, record: CodeDeployRecord, now: datetime, cause: str) -> Outcome:
        info = self._codedeploy.deployment(record.deployment_id)
        lineage = parse_retry_description(info.description)
        if lineage is not None:
            # berth created this deployment as a retry: its attempt counts along the original's lineage, even when
            # its first event arrived before berth recorded it.
            record = transitions.lineage_found(record, lineage[0], lineage[1])
        failures = self._codedeploy.failed_instances(record.deployment_id)
        failure = classify_failure(f.signal for f in failures)
        diagnosis = "; ".join(f"{f.instance_id} {f.lifecycle_event} {f.signal.script_name} {f.signal.error_code}: "
                              f"{f.signal.text.strip()[-200:]}" for f in failures[:5]) or info.error_message
        why = f"FAILURE ({failure.value}) after {cause}: {diagnosis}"[:1500]
        return self._retrier.on_failure(record, Diagnosis(info, failures, failure, why), now)
