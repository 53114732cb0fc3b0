"""CloudWatch: the states of the alarms a rollout in waves watches (DescribeAlarms, 100 names a call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_failure
from chalicelib.domain.rollout import MAX_ALARMS_PER_CALL, AlarmState


class AlarmWatch:
    def __init__(self, cloudwatch_client: Any) -> None:
        self._cloudwatch = cloudwatch_client

    def states(self, names: Sequence[str]) -> list[AlarmState]:
        """Each named alarm that exists, metric or composite, with its state and CloudWatch's reason for it. A name
        that matches no alarm is left out (see domain.rollout.missing)."""
        found: list[AlarmState] = []
        for start in range(0, len(names), MAX_ALARMS_PER_CALL):
            kwargs: dict[str, Any] = {"AlarmNames": list(names[start:start + MAX_ALARMS_PER_CALL]),
                                      "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
                                      "MaxRecords": MAX_ALARMS_PER_CALL}
            while True:
                try:
                    page = self._cloudwatch.describe_alarms(**kwargs)
                except (ClientError, BotoCoreError) as exc:
                    raise aws_failure("CloudWatch DescribeAlarms", exc) from exc
                found += [AlarmState(name=str(alarm["AlarmName"]), state=str(alarm["StateValue"]),
                                     reason=str(alarm.get("StateReason", "")))
                          for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]]
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return found
