"""EventBridge Scheduler: a retry is a one-time schedule that invokes the retry Lambda, so no Lambda ever sleeps.

Names are deterministic per deployment lineage and attempt (chalicelib.domain.retry.schedule_name), so a second
create of the same retry (a duplicate event, a concurrent handler, a create whose answer was lost and that botocore
sent again) is a ConflictException. A conflict means "already scheduled" only when the schedule of that name carries
the same retry (its Input, read back into the same typed payload); anything else is ScheduleTaken, never swallowed.
Schedules delete themselves after they fire (ActionAfterCompletion=DELETE).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.errors import aws_call, returning
from chalicelib.domain.errors import BerthError, ScheduleTaken
from chalicelib.domain.retry_payload import RetryTask, parse_retry_payload

# A one-time schedule resolves to the minute; keeping it at least this far ahead avoids a time already past.
MIN_LEAD = timedelta(seconds=60)
DESCRIPTIONS = {"look": "berth: look at a waiting rollout again"}


class RetryScheduler:
    def __init__(self, scheduler_client: Any, target_arn: str, role_arn: str, group: str = "default",
                 dead_letter_arn: str = "") -> None:
        self._scheduler = scheduler_client
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._group = group
        self._dead_letter_arn = dead_letter_arn

    def schedule(self, name: str, at: datetime, task: RetryTask, now: datetime) -> bool:
        """Create the schedule; False when the same retry is scheduled already. ScheduleTaken when the name is held
        by a schedule for another retry."""
        when = max(at, now + MIN_LEAD).astimezone(UTC)
        when = datetime.fromtimestamp(math.ceil(when.timestamp()), UTC)
        target: dict[str, Any] = {"Arn": self._target_arn, "RoleArn": self._role_arn, "Input": json.dumps(task.wire()),
                                  "RetryPolicy": {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}}
        if self._dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._dead_letter_arn}
        created = aws_call("Scheduler CreateSchedule", self._scheduler.create_schedule,
                           expected={"ConflictException": returning(None)},
                           Name=name, GroupName=self._group, ScheduleExpression=f"at({when:%Y-%m-%dT%H:%M:%S})",
                           ScheduleExpressionTimezone="UTC", FlexibleTimeWindow={"Mode": "OFF"},
                           ActionAfterCompletion="DELETE", Target=target,
                           Description=DESCRIPTIONS.get(task.kind, "berth automatic retry"))
        if created is None:
            self._same_retry(name, task)
            return False
        return True

    def _same_retry(self, name: str, task: RetryTask) -> None:
        """Raise ScheduleTaken unless the existing schedule `name` carries `task`. One that fired and deleted
        itself since the conflict counts as the same retry: a name is never reused for another."""
        existing = aws_call("Scheduler GetSchedule", self._scheduler.get_schedule,
                            expected={"ResourceNotFoundException": returning(None)}, Name=name, GroupName=self._group)
        if existing is None:
            return
        scheduled = str(existing.get("Target", {}).get("Input", ""))
        try:
            same = parse_retry_payload(json.loads(scheduled)) == task
        except (ValueError, BerthError):
            same = False
        if not same:
            raise ScheduleTaken(f"retry schedule {name} exists for another retry ({scheduled[:200]}); this retry "
                                f"({json.dumps(task.wire())}) was not scheduled")
