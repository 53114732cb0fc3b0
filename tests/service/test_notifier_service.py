"""The Notifier port: what it hands the publisher, and that a publish that fails is logged and counted, never raised."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.observability import Telemetry
from chalicelib.services.notifier import Notifier
from tests.fakes.events import FakeEventPublisher

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


class Counted(Telemetry):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, float] = {}

    def count(self, name: str, value: float = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def test_a_give_up_that_opens_the_breaker_says_both() -> None:
    publisher, telemetry = FakeEventPublisher(), Counted()
    Notifier(publisher, "eu-west-1", telemetry).gave_up("web-prod", "d-1", "circuit breaker open", True, NOW)
    assert publisher.detail_types() == ["Retries Exhausted", "Breaker Opened"]
    assert telemetry.counts == {"NotificationsPublished": 2}


def test_a_give_up_without_a_target_opens_no_breaker() -> None:
    publisher = FakeEventPublisher()
    Notifier(publisher).gave_up(None, "stage-lineage", "retry budget spent", True, NOW)
    assert publisher.detail_types() == ["Retries Exhausted"]


def test_a_failed_publish_is_logged_and_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    publisher, telemetry = FakeEventPublisher(), Counted()
    publisher.fail_with = "ResourceNotFoundException: Event bus berth does not exist"
    Notifier(publisher, telemetry=telemetry).frozen("web-prod", "release", "bob", None, NOW)
    assert telemetry.counts == {"NotificationsFailed": 1}
    [record] = [r for r in caplog.records if r.getMessage() == "could not publish berth's events"]
    details: Any = record
    assert details.detail_types == ["Target Frozen"] and "does not exist" in details.error


def test_without_a_publisher_nothing_is_said_or_counted() -> None:
    telemetry = Counted()
    Notifier(None, telemetry=telemetry).unfrozen("web-prod", "bob", NOW)
    assert telemetry.counts == {}
