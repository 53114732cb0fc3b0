"""The retry policy: failure classes, full-jitter backoff, and the decision, with time and randomness passed in."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.exit_codes import FailureClass, ScriptExit
from chalicelib.domain.retry import (
    Failure,
    FailureSignal,
    GiveUp,
    History,
    Retry,
    RetryPolicy,
    TargetBreaker,
    backoff_seconds,
    breaker_trips,
    classify_failure,
    classify_signal,
    decide_retry,
    schedule_name,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def top(low: float, high: float) -> float:
    return high


def bottom(low: float, high: float) -> float:
    return low


@pytest.mark.parametrize("signal, expected", [
    (FailureSignal(exit_code=21), FailureClass.TRANSIENT),
    (FailureSignal(exit_code=20), FailureClass.TRANSIENT),
    (FailureSignal(exit_code=10), FailureClass.REMEDIABLE),
    (FailureSignal(exit_code=31), FailureClass.PERMANENT),
    (FailureSignal(exit_code=40), FailureClass.PERMANENT),
    (FailureSignal(exit_code=41), FailureClass.PERMANENT),
    (FailureSignal(exit_code=2), FailureClass.PERMANENT),
    (FailureSignal(exit_code=127, text="bash: line 3: docker: command not found"), FailureClass.REMEDIABLE),
    (FailureSignal(exit_code=127, text="bash: jq: command not found"), FailureClass.PERMANENT),
    (FailureSignal(status="TimedOut", exit_code=-1), FailureClass.TRANSIENT),
    (FailureSignal(status="DeliveryTimedOut"), FailureClass.TRANSIENT),
    (FailureSignal(status="NeverRan"), FailureClass.TRANSIENT),
    (FailureSignal(error_code="ScriptFailed", script_name="scripts/start_container.sh",
                   text="Script at specified location: scripts/start_container.sh run as user root failed with exit "
                        "code 127\n[stderr]scripts/start_container.sh: line 4: docker: command not found"),
     FailureClass.REMEDIABLE),
    (FailureSignal(error_code="ScriptFailed", text="exit code 1: Error: unhealthy"), FailureClass.PERMANENT),
    (FailureSignal(error_code="AgentIssue"), FailureClass.TRANSIENT),
    (FailureSignal(exit_code=1, text="An error occurred (ThrottlingException): Rate exceeded"), FailureClass.TRANSIENT),
    (FailureSignal(exit_code=1, text="Get https://registry/v2/: net/http: TLS handshake timeout"),
     FailureClass.TRANSIENT),
])
def test_classify_signal(signal: FailureSignal, expected: FailureClass) -> None:
    assert classify_signal(signal) == expected


def test_every_script_exit_code_has_a_class() -> None:
    for code in ScriptExit:
        if code != ScriptExit.OK:
            assert classify_signal(FailureSignal(exit_code=int(code))) in FailureClass


def test_a_deployment_is_as_bad_as_its_worst_instance() -> None:
    transient, remediable = FailureSignal(exit_code=21), FailureSignal(exit_code=10)
    permanent = FailureSignal(exit_code=40)
    assert classify_failure([transient, remediable]) == FailureClass.REMEDIABLE
    assert classify_failure([transient, remediable, permanent]) == FailureClass.PERMANENT
    assert classify_failure([transient]) == FailureClass.TRANSIENT
    assert classify_failure([]) == FailureClass.TRANSIENT


@given(attempt=st.integers(min_value=1, max_value=200), base=st.integers(min_value=1, max_value=3600),
       cap=st.integers(min_value=1, max_value=86400), seed=st.integers())
def test_backoff_stays_within_zero_and_cap(attempt: int, base: int, cap: int, seed: int) -> None:
    delay = backoff_seconds(attempt, base, cap, random.Random(seed).uniform)
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_backoff_ceiling_doubles_until_the_cap() -> None:
    assert [backoff_seconds(n, 30, 900, top) for n in range(1, 7)] == [30, 60, 120, 240, 480, 900]
    assert backoff_seconds(3, 30, 900, bottom) == 0


def test_backoff_clamps_a_misbehaving_rng() -> None:
    assert backoff_seconds(1, 30, 900, lambda low, high: -5.0) == 0
    assert backoff_seconds(1, 30, 900, lambda low, high: 10_000.0) == 30


def plan(failure: FailureClass = FailureClass.TRANSIENT, attempts: int = 1, is_rollback: bool = False,
         stopped_by_person: bool = False, breaker_open: bool = False, earlier_failures: tuple[int, ...] = ()) -> object:
    return decide_retry(Failure(failure, is_rollback, stopped_by_person),
                        History(attempts, TargetBreaker(earlier_failures, breaker_open)), POLICY, NOW, top)


def test_transient_failure_retries_after_backoff() -> None:
    assert plan(attempts=1) == Retry(2, NOW + timedelta(seconds=30), 30.0, False,
                                     "transient failure: retry after a backoff")
    assert plan(attempts=2) == Retry(3, NOW + timedelta(seconds=60), 60.0, False,
                                     "transient failure: retry after a backoff")


def test_remediable_failure_repairs_first() -> None:
    decision = plan(FailureClass.REMEDIABLE)
    assert isinstance(decision, Retry) and decision.remediate_first


@pytest.mark.parametrize("flags, reason", [
    ({"is_rollback": True}, "never retries a rollback"),
    ({"stopped_by_person": True}, "a person stopped"),
    ({"breaker_open": True}, "circuit breaker open"),
])
def test_never_retried(flags: dict[str, object], reason: str) -> None:
    decision = plan(**flags)
    assert isinstance(decision, GiveUp) and reason in decision.reason


def test_permanent_failure_and_spent_budget_give_up() -> None:
    assert isinstance(plan(FailureClass.PERMANENT), GiveUp)
    decision = plan(attempts=3)
    assert isinstance(decision, GiveUp) and "3 of 3" in decision.reason and not decision.open_breaker


def test_breaker_trips_on_the_threshold_within_the_window() -> None:
    now = int(NOW.timestamp())
    assert not breaker_trips([now - 10] * 4, now, POLICY.breaker)
    assert breaker_trips([now - 10] * 5, now, POLICY.breaker)
    assert not breaker_trips([now - 4000] * 10, now, POLICY.breaker)
    decision = plan(earlier_failures=(now,) * 4)
    assert isinstance(decision, GiveUp) and decision.open_breaker


def test_schedule_names_are_deterministic_and_valid() -> None:
    name = schedule_name("d-20261126-abc", 2)
    assert name == schedule_name("d-20261126-abc", 2)
    assert name.startswith("berth-retry-d-20261126-abc-") and name.endswith("-2")
    assert schedule_name("d-1", 2) != schedule_name("d-1", 3)
    assert schedule_name("d-1", 2, wait=1) not in (schedule_name("d-1", 2), schedule_name("d-1", 2, wait=2))
    name = schedule_name("x" * 100 + "/weird id", 3)
    assert len(name) <= 64 and all(ch.isalnum() or ch in "-_." for ch in name)


def test_schedule_names_of_keys_alike_up_to_the_cut_or_the_cleaning_differ() -> None:
    """Two pipelines' stage retries used to share one schedule: their keys were cut to 48 characters."""
    execution = "3137f7cb-7cf7-4f2b-8f3a-7f1b9b2d4c5e"
    one = schedule_name(f"release-pipeline-for-the-payments-service-blue-{execution}-Prod", 1)
    two = schedule_name(f"release-pipeline-for-the-payments-service-green-{execution}-Prod", 1)
    assert one != two
    assert schedule_name("web:prod", 1) != schedule_name("web-prod", 1) != schedule_name("web/prod", 1)
    assert schedule_name(f"p-{execution}-Prod", 1) != schedule_name(f"p-{execution[:8]}-other-Prod", 1)


@given(st.text(min_size=1, max_size=300), st.integers(min_value=1, max_value=999),
       st.integers(min_value=0, max_value=9))
def test_schedule_names_always_fit_schedulers_rules(lineage: str, attempt: int, wait: int) -> None:
    name = schedule_name(lineage, attempt, wait=wait)
    assert 1 <= len(name) <= 64 and re.fullmatch(r"[0-9a-zA-Z\-_.]+", name), name
