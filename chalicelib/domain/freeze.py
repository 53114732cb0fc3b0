"""A target's freeze: who froze it, why, since when and until when (open-ended when `until` is None). Pure: callers
pass `now`.

While a freeze is in force, nothing new is released to the target: a pipeline job waits through its continuations
(services/pipeline_job.py, failing after FREEZE_WAIT naming the freeze), a REST deploy, rollback or sync is refused
with 409 unless the body gives `override_freeze` with a reason (kept in the deployment's history), and a scheduled
retry is held: it schedules itself again for after `until` (or RETRY_HOLD later when open-ended). A new instance's
join goes through: it installs the revision the target already runs, which is not a release, and holding it would
keep the Auto Scaling group's capacity out of service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import TargetFrozen

RETRY_HOLD = timedelta(minutes=5)       # an open-ended freeze: a held retry looks again this much later
FREEZE_WAIT = timedelta(hours=1)        # a pipeline job waits this long for a freeze to end, then fails
MAX_FREEZE = timedelta(days=366)        # the furthest `until` (an open-ended freeze has none)


@dataclass(frozen=True)
class Freeze:
    reason: str
    by: str
    at: datetime
    until: datetime | None = None

    def in_force(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    def describe(self, target: str) -> str:
        until = f" until {self.until.isoformat()}" if self.until else " until unfrozen"
        return f"target {target!r} is frozen{until} by {self.by} ({self.at.isoformat()}): {self.reason}"


def in_force(freeze: Freeze | None, now: datetime) -> Freeze | None:
    return freeze if freeze is not None and freeze.in_force(now) else None


def refuse_unless_overridden(target: str, freeze: Freeze | None, override: str | None, now: datetime) -> str | None:
    """None when not frozen; the override's history note when overridden; TargetFrozen otherwise."""
    frozen = in_force(freeze, now)
    if frozen is None:
        return None
    if not override:
        raise TargetFrozen(f"{frozen.describe(target)}. Deploy with \"override_freeze\": \"<why>\" "
                           "(berth deploy --override-freeze WHY) to deploy anyway")
    return f"freeze overridden: {override} (frozen by {frozen.by}: {frozen.reason})"


def retry_held_until(freeze: Freeze | None, now: datetime) -> datetime | None:
    """When a retry that fires during a freeze should look again; None when not frozen."""
    frozen = in_force(freeze, now)
    if frozen is None:
        return None
    return frozen.until if frozen.until is not None else now + RETRY_HOLD
