"""RetryScheduler: the in-memory fake (tests/fakes/scheduler.py) and the adapter on moto answer alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.domain.errors import ScheduleTaken
from chalicelib.domain.retry_payload import SsmRetry
from tests.fakes.scheduler import FakeRetryScheduler

NOW = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
PAYLOAD = SsmRetry(deployment_id="d-1", attempt=2)
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:berth-test-retry_deployment"
ROLE = "arn:aws:iam::123456789012:role/berth-test-scheduler"


class SchedulerWorld:
    scheduler: RetryScheduler

    def scheduled(self) -> dict[str, tuple[datetime, dict[str, Any]]]:
        """Every schedule by name: when it fires and what it hands the retry Lambda."""
        raise NotImplementedError

    def fire(self, name: str) -> None:
        """Scheduler invokes the target and deletes the schedule (ActionAfterCompletion=DELETE)."""
        raise NotImplementedError


class FakeWorld(SchedulerWorld):
    def __init__(self) -> None:
        self.scheduler = self.fake = FakeRetryScheduler()

    def scheduled(self) -> dict[str, tuple[datetime, dict[str, Any]]]:
        return {name: (s.at, s.payload) for name, s in self.fake.schedules.items()}

    def fire(self, name: str) -> None:
        self.fake.fire(name)


class MotoWorld(SchedulerWorld):
    def __init__(self) -> None:
        self.client = boto3.client("scheduler", region_name="us-east-1")
        self.scheduler = RetryScheduler(self.client, FUNCTION, ROLE)

    def scheduled(self) -> dict[str, tuple[datetime, dict[str, Any]]]:
        found = {}
        for item in self.client.list_schedules(GroupName="default")["Schedules"]:
            schedule = self.client.get_schedule(Name=item["Name"], GroupName="default")
            at = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
            found[item["Name"]] = (at, json.loads(schedule["Target"]["Input"]))
        return found

    def fire(self, name: str) -> None:
        self.client.delete_schedule(Name=name, GroupName="default")


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def world(request: pytest.FixtureRequest) -> Iterator[SchedulerWorld]:
    if request.param == "fake":
        yield FakeWorld()
    else:
        request.getfixturevalue("moto_account")
        yield MotoWorld()


def test_a_retry_is_scheduled_once_at_its_time(world: SchedulerWorld) -> None:
    at = NOW + timedelta(minutes=5)
    assert world.scheduler.schedule("berth-retry-d-1-2", at, PAYLOAD, NOW) is True
    fires = at.replace(microsecond=0) + timedelta(seconds=1)
    assert world.scheduled() == {"berth-retry-d-1-2": (fires, PAYLOAD.wire())}


def test_a_retry_due_now_waits_a_minute(world: SchedulerWorld) -> None:
    world.scheduler.schedule("berth-retry-d-1-2", NOW - timedelta(minutes=5), PAYLOAD, NOW)
    assert world.scheduled()["berth-retry-d-1-2"][0] == NOW.replace(microsecond=0) + timedelta(seconds=61)


def test_the_same_retry_again_is_already_scheduled(world: SchedulerWorld) -> None:
    world.scheduler.schedule("berth-retry-d-1-2", NOW, PAYLOAD, NOW)
    assert world.scheduler.schedule("berth-retry-d-1-2", NOW + timedelta(hours=1), PAYLOAD, NOW) is False
    assert list(world.scheduled()) == ["berth-retry-d-1-2"]


def test_a_name_held_by_another_retry_is_never_taken_for_this_one(world: SchedulerWorld) -> None:
    world.scheduler.schedule("berth-retry-d-1-2", NOW, PAYLOAD, NOW)
    with pytest.raises(ScheduleTaken, match="berth-retry-d-1-2 exists for another retry"):
        world.scheduler.schedule("berth-retry-d-1-2", NOW, PAYLOAD.model_copy(update={"deployment_id": "d-2"}), NOW)
    assert world.scheduled()["berth-retry-d-1-2"][1] == PAYLOAD.wire()


def test_a_fired_schedule_frees_its_name(world: SchedulerWorld) -> None:
    world.scheduler.schedule("berth-retry-d-1-2", NOW, PAYLOAD, NOW)
    world.fire("berth-retry-d-1-2")
    assert world.scheduled() == {}
    assert world.scheduler.schedule("berth-retry-d-1-2", NOW, PAYLOAD, NOW) is True
