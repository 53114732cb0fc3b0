"""Which index answers a history query, and which of its partitions it reads (domain/audit.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from chalicelib.domain.audit import DEFAULT_REACH, AuditFilter, AuditIndex, AuditPlan, months_between, plan_audit
from chalicelib.domain.deployment import DeploymentStatus

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
ALICE = "arn:aws:iam::123456789012:user/alice"


def test_the_most_selective_key_named_picks_the_index() -> None:
    assert plan_audit(AuditFilter(digest=DIGEST, target="web", caller=ALICE), NOW).index is AuditIndex.BY_DIGEST
    assert plan_audit(AuditFilter(target="web", caller=ALICE), NOW).index is AuditIndex.BY_TARGET
    assert plan_audit(AuditFilter(caller=ALICE, status=DeploymentStatus.FAILED), NOW) == AuditPlan(
        AuditIndex.BY_CALLER, (ALICE,), None, NOW, AuditFilter(caller=ALICE, status=DeploymentStatus.FAILED))


def test_time_alone_reads_months_newest_first_a_year_back_by_default() -> None:
    plan = plan_audit(AuditFilter(), NOW)
    assert plan.index is AuditIndex.BY_TIME and plan.since == NOW - DEFAULT_REACH and plan.until == NOW
    assert plan.partitions[:3] == ("2026-11", "2026-10", "2026-09") and plan.partitions[-1] == "2025-11"
    assert len(plan.partitions) == 13


def test_months_cross_years_and_take_the_utc_month() -> None:
    since = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert months_between(since, datetime(2026, 2, 1, tzinfo=UTC)) == ("2026-02", "2026-01", "2025-12")
    east = timezone(timedelta(hours=2))   # 1 March 01:00 at +02:00 is still February in UTC
    assert months_between(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, 1, 0, tzinfo=east)) == ("2026-02",)
    assert months_between(NOW, NOW - timedelta(days=40)) == ()
