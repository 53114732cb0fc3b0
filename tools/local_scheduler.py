"""A local stand-in for EventBridge Scheduler firing one-time schedules: it reads the schedules from the (emulated)
Scheduler API, hands each one's Input to the Lambda it targets, and deletes it, as ActionAfterCompletion=DELETE does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def pending(scheduler: Any, group: str = "default") -> list[tuple[str, dict[str, Any]]]:
    """Every schedule in `group` with its payload, oldest name first."""
    names = []
    kwargs: dict[str, Any] = {"GroupName": group}
    while True:
        page = scheduler.list_schedules(**kwargs)
        names += [item["Name"] for item in page.get("Schedules", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    found = []
    for name in sorted(names):
        schedule = scheduler.get_schedule(Name=name, GroupName=group)
        found.append((name, json.loads(schedule["Target"]["Input"])))
    return found


def fire_all(scheduler: Any, invoke: Callable[[dict[str, Any]], Any], group: str = "default") -> list[str]:
    """Fire every pending schedule now (the clock is the caller's to fake); returns the names fired."""
    fired = []
    for name, payload in pending(scheduler, group):
        scheduler.delete_schedule(Name=name, GroupName=group)
        invoke(payload)
        fired.append(name)
    return fired
