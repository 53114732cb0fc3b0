"""EventBridge PutEvents: berth's own events (chalicelib/domain/notifications.py) onto one bus, ten entries a call
(PutEvents' limit). PutEvents answers 200 even when entries fail: `FailedEntryCount` says how many did, and each failed
entry carries its `ErrorCode`."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.errors import aws_call
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.notifications import Notification, batches, entries


class EventPublisher:
    def __init__(self, events_client: Any, bus: str = "default") -> None:
        self._events = events_client
        self._bus = bus

    def publish(self, notifications: list[Notification]) -> None:
        """Send every notification; AwsCallFailed naming the first failed entry's error when any entry failed (the
        other batches are still sent)."""
        failed = 0
        first = ""
        for batch in batches(entries(notifications, self._bus)):
            answer = aws_call("EventBridge PutEvents", self._events.put_events, Entries=batch)
            count = int(answer.get("FailedEntryCount", 0))
            if count:
                failed += count
                first = first or next((f"{sent['DetailType']}: {result['ErrorCode']} {result.get('ErrorMessage', '')}"
                                       for sent, result in zip(batch, answer.get("Entries", []), strict=False)
                                       if result.get("ErrorCode")), "")
        if failed:
            raise AwsCallFailed(f"EventBridge PutEvents: {failed} of {len(notifications)} entries failed "
                                f"({first.strip() or 'no error code given'})")
