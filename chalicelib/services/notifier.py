"""The Notifier port: what the services tell EventBridge (chalicelib/domain/notifications.py). Publishing never fails
what it reports: a failure is logged and counted (NotificationsFailed), never raised, since a deployment that happened
must not read as failed because its announcement did not go out. Without a publisher it says nothing (tests, scripts).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from chalicelib.domain import notifications as n
from chalicelib.domain.deployment import Deployment
from chalicelib.observability import Telemetry

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, notifications: list[n.Notification]) -> None: ...


class Notifier:
    def __init__(self, publisher: Publisher | None = None, region: str = "us-east-1",
                 telemetry: Telemetry | None = None) -> None:
        self._publisher = publisher
        self._region = region
        self._telemetry = telemetry or Telemetry()

    def started(self, deployment: Deployment) -> None:
        self.send([n.deployment_started(deployment, self._region)])

    def ended(self, deployment: Deployment) -> None:
        self.send(n.deployment_ended(deployment, self._region))

    def retry_scheduled(self, target: str | None, lineage: str, attempt: int, due: datetime, reason: str,
                        now: datetime, deployment: Deployment | None = None) -> None:
        self.send([n.retry_scheduled(target, lineage, attempt, due, reason, now, self._region, deployment)])

    def gave_up(self, target: str | None, lineage: str, reason: str, opened_breaker: bool, now: datetime,
                deployment: Deployment | None = None) -> None:
        """A failure no retry follows: Retries Exhausted, and Breaker Opened when this failure opened it."""
        said = [n.retries_exhausted(target, lineage, reason, now, self._region, deployment)]
        if opened_breaker and target is not None:
            said.append(n.breaker_opened(target, reason, now, self._region, deployment))
        self.send(said)

    def frozen(self, target: str, reason: str, caller: str, until: datetime | None, now: datetime) -> None:
        self.send([n.target_frozen(target, reason, caller, until, now, self._region)])

    def unfrozen(self, target: str, caller: str, now: datetime) -> None:
        self.send([n.target_unfrozen(target, caller, now, self._region)])

    def send(self, notifications: list[n.Notification]) -> None:
        if self._publisher is None or not notifications:
            return
        try:
            self._publisher.publish(notifications)
            self._telemetry.count("NotificationsPublished", len(notifications))
        except Exception as exc:     # never fails what it reports (see the module)
            logger.error("could not publish berth's events", extra={
                "detail_types": [item.detail_type for item in notifications],
                "error": getattr(exc, "message", None) or repr(exc)[:500]})
            self._telemetry.count("NotificationsFailed", len(notifications))
