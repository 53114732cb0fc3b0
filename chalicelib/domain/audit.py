"""Audit queries: which deployments, across targets, a caller, a digest, a time range, a target or a status picks.

`AuditFilter` is what a request asked for; `plan_audit` decides which index answers it and which of its partitions to
read, newest first, so the store only carries the plan out. The most selective key the request names is the index:
a digest (a few deployments), then a target, then a caller; with none of them the `by_time` index, whose partitions
are months (one partition for all history would take every deployment's writes, and a read of a week would still be
a read of one ever-growing partition). Whatever the index does not key on is a filter on what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from chalicelib.domain.deployment import DeploymentStatus

# Without `since`, a query by time alone reads the months of the last year: each month is one Query, and nobody
# should pay for reading every month since berth was installed by leaving a flag out. A key (digest, target, caller)
# reaches back to the first deployment.
DEFAULT_REACH = timedelta(days=366)


class AuditIndex(StrEnum):
    BY_DIGEST = "by_digest"
    BY_TARGET = "by_target"
    BY_CALLER = "by_caller"
    BY_TIME = "by_time"


@dataclass(frozen=True)
class AuditFilter:
    caller: str | None = None
    digest: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    target: str | None = None
    status: DeploymentStatus | None = None


@dataclass(frozen=True)
class AuditPlan:
    """Read `partitions` of `index` in order, each newest first, keeping what was created in [since, until)."""

    index: AuditIndex
    partitions: tuple[str, ...]       # the index key's values: a digest, target, caller, or months (YYYY-MM)
    since: datetime | None
    until: datetime
    filters: AuditFilter              # what the read keeps besides the index key and the time range


def plan_audit(wanted: AuditFilter, now: datetime) -> AuditPlan:
    until = (wanted.until or now).astimezone(UTC)
    since = wanted.since.astimezone(UTC) if wanted.since else None
    if wanted.digest is not None:
        return AuditPlan(AuditIndex.BY_DIGEST, (wanted.digest,), since, until, wanted)
    if wanted.target is not None:
        return AuditPlan(AuditIndex.BY_TARGET, (wanted.target,), since, until, wanted)
    if wanted.caller is not None:
        return AuditPlan(AuditIndex.BY_CALLER, (wanted.caller,), since, until, wanted)
    since = since or until - DEFAULT_REACH
    return AuditPlan(AuditIndex.BY_TIME, months_between(since, until), since, until, wanted)


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def months_between(since: datetime, until: datetime) -> tuple[str, ...]:
    """The months from `until`'s back to `since`'s, newest first ("2026-11", "2026-10", ...)."""
    year, month = until.astimezone(UTC).year, until.astimezone(UTC).month
    first = since.astimezone(UTC)
    months = []
    while (year, month) >= (first.year, first.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return tuple(months)
