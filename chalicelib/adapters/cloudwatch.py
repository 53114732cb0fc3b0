"""CloudWatch: the states of the alarms a rollout in waves watches (DescribeAlarms, 100 names a call).

Metric alarms only. berth's role may call DescribeAlarms on alarm ARNs (infra/policies.py), and CloudWatch returns
composite alarms only to a caller whose DescribeAlarms permission is scoped to "*" (DescribeAlarms in the CloudWatch
API Reference); a composite alarm's name therefore reads as missing, and the start is refused saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.errors import aws_call
from chalicelib.domain.rollout import MAX_ALARMS_PER_CALL, AlarmState


class AlarmWatch:
    def __init__(self, cloudwatch_client: Any) -> None:
        self._cloudwatch = cloudwatch_client

    def states(self, names: Sequence[str]) -> list[AlarmState]:
        """Each named metric alarm that exists, with its state and CloudWatch's reason for it. A name that matches no
        metric alarm is left out (see domain.rollout.missing)."""
        found: list[AlarmState] = []
        for start in range(0, len(names), MAX_ALARMS_PER_CALL):
            kwargs: dict[str, Any] = {"AlarmNames": list(names[start:start + MAX_ALARMS_PER_CALL]),
                                      "AlarmTypes": ["MetricAlarm"],
                                      "MaxRecords": MAX_ALARMS_PER_CALL}
            while True:
                page = aws_call("CloudWatch DescribeAlarms", self._cloudwatch.describe_alarms, **kwargs)
                found += [AlarmState(name=str(alarm["AlarmName"]), state=str(alarm["StateValue"]),
                                     reason=str(alarm.get("StateReason", "")))
                          for alarm in page.get("MetricAlarms", [])]
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        return found
