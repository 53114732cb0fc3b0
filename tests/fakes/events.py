"""EventBridge PutEvents in memory, behind the EventPublisher port: the events berth published, as a rule on the bus
would see them (source, detail-type, the detail parsed back). `fail_with` makes every publish fail as the adapter
does (AwsCallFailed), so a test can show that a failed publish fails nothing else."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.events import EventPublisher
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.notifications import Notification, entries


class FakeEventPublisher(EventPublisher):
    def __init__(self, bus: str = "default") -> None:
        super().__init__(events_client=None, bus=bus)
        self.bus = bus
        self.published: list[dict[str, Any]] = []
        self.fail_with: str | None = None

    def publish(self, notifications: list[Notification]) -> None:
        if self.fail_with is not None:
            raise AwsCallFailed(f"EventBridge PutEvents: {self.fail_with}")
        self.published += [{"source": e["Source"], "detail-type": e["DetailType"], "detail": json.loads(e["Detail"])}
                           for e in entries(notifications, self.bus)]

    def detail_types(self) -> list[str]:
        return [event["detail-type"] for event in self.published]
