"""EventBridge Scheduler in memory, behind the RetryScheduler port.

A schedule is kept by (group, name) with the time it fires (as the adapter computes it: never sooner than a minute
after `now`, rounded up to the second) and its payload. `fire(name)` plays Scheduler invoking the retry Lambda and
deleting the schedule (ActionAfterCompletion=DELETE): the name is free again afterwards, as in AWS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.scheduler import MIN_LEAD, RetryScheduler
from chalicelib.domain.errors import AwsCallFailed, ScheduleTaken
from chalicelib.domain.retry_payload import RetryTask


@dataclass(frozen=True)
class Schedule:
    name: str
    at: datetime
    payload: dict[str, Any]          # as the retry Lambda receives it (the schedule's Input)


class FakeRetryScheduler(RetryScheduler):
    def __init__(self, group: str = "default") -> None:
        super().__init__(scheduler_client=None, target_arn="", role_arn="", group=group)
        self.group = group
        self.schedules: dict[str, Schedule] = {}
        self.fired: list[Schedule] = []
        self._failures: list[AwsCallFailed] = []

    def fail_next(self, error: AwsCallFailed) -> None:
        self._failures.append(error)

    def schedule(self, name: str, at: datetime, task: RetryTask, now: datetime) -> bool:
        payload = task.wire()
        if self._failures:
            raise self._failures.pop(0)
        existing = self.schedules.get(name)
        if existing is not None:
            if existing.payload != payload:
                raise ScheduleTaken(f"retry schedule {name} exists for another retry; this retry was not scheduled")
            return False
        when = max(at, now + MIN_LEAD).astimezone(UTC)
        self.schedules[name] = Schedule(name, datetime.fromtimestamp(math.ceil(when.timestamp()), UTC), payload)
        return True

    def fire(self, name: str) -> dict[str, Any]:
        """The payload the retry Lambda gets; the schedule deletes itself."""
        schedule = self.schedules.pop(name)
        self.fired.append(schedule)
        return schedule.payload
