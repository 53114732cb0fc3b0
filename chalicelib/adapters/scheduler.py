"""EventBridge Scheduler: a retry is a one-time schedule that invokes the retry Lambda, so no Lambda ever sleeps.

Names are deterministic per deployment lineage and attempt, so a second create of the same retry (a duplicate event,
a concurrent handler) is a ConflictException, which here means "already scheduled". Schedules delete themselves
after they fire (ActionAfterCompletion=DELETE).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_failure, error_code

# A one-time schedule resolves to the minute; keeping it at least this far ahead avoids a time already past.
MIN_LEAD = timedelta(seconds=60)


class RetryScheduler:
    def __init__(self, scheduler_client: Any, target_arn: str, role_arn: str, group: str = "default",
                 dead_letter_arn: str = "") -> None:
        self._scheduler = scheduler_client
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._group = group
        self._dead_letter_arn = dead_letter_arn

    def schedule(self, name: str, at: datetime, payload: dict[str, Any], now: datetime) -> bool:
        """Create the schedule; False when one of that name exists already."""
        when = max(at, now + MIN_LEAD).astimezone(UTC)
        when = datetime.fromtimestamp(math.ceil(when.timestamp()), UTC)
        target: dict[str, Any] = {"Arn": self._target_arn, "RoleArn": self._role_arn, "Input": json.dumps(payload),
                                  "RetryPolicy": {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}}
        if self._dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._dead_letter_arn}
        try:
            self._scheduler.create_schedule(
                Name=name, GroupName=self._group, ScheduleExpression=f"at({when:%Y-%m-%dT%H:%M:%S})",
                ScheduleExpressionTimezone="UTC", FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE", Description="berth automatic retry", Target=target)
        except ClientError as exc:
            if error_code(exc) == "ConflictException":
                return False
            raise aws_failure("Scheduler CreateSchedule", exc) from exc
        except BotoCoreError as exc:
            raise aws_failure("Scheduler CreateSchedule", exc) from exc
        return True
