"""decide_retry, the one decision behind every retry (SSM attempts, CodeDeploy deployments, pipeline stages): each
branch, compared with `==`, with the clock and the random source passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.deployment import Attempt, InstanceResult
from chalicelib.domain.exit_codes import FailureClass, ScriptExit
from chalicelib.domain.retry import (
    Breaker,
    Failure,
    GiveUp,
    History,
    Retry,
    RetryPolicy,
    TargetBreaker,
    classify_attempt,
    decide_retry,
    remedy_of,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AT = int(NOW.timestamp())
POLICY = RetryPolicy(max_attempts=3, base_seconds=30, cap_seconds=900, breaker=Breaker(threshold=3,
                                                                                       window_seconds=600))
TRANSIENT = Failure(FailureClass.TRANSIENT)
ROLLBACK_REASON = "the failed deployment is a rollback; berth never retries a rollback"
STOPPED_REASON = "a person stopped the deployment; berth does not retry it"
PERMANENT_REASON = ("the failure is permanent (bad revision, configuration, or a health check that failed after a "
                    "clean start); retrying would fail the same way")


def top(low: float, high: float) -> float:
    return high


def half(low: float, high: float) -> float:
    return (low + high) / 2


def decide(failure: Failure = TRANSIENT, attempts: int = 1, breaker: TargetBreaker | None = None,
           rng: object = top) -> object:
    return decide_retry(failure, History(attempts, breaker), POLICY, NOW, rng)  # type: ignore[arg-type]


def test_a_transient_failure_is_retried_as_the_next_attempt_after_the_backoff() -> None:
    assert decide(attempts=1) == Retry(2, NOW + timedelta(seconds=30), 30.0, False,
                                       "transient failure: retry after a backoff")
    assert decide(attempts=2, rng=half) == Retry(3, NOW + timedelta(seconds=30), 30.0, False,
                                                 "transient failure: retry after a backoff")


def test_a_remediable_failure_is_retried_after_remediation() -> None:
    assert decide(Failure(FailureClass.REMEDIABLE)) == Retry(
        2, NOW + timedelta(seconds=30), 30.0, True, "Docker is missing on some instances: install it, then retry")


def test_a_permanent_failure_gives_up_without_opening_the_breaker() -> None:
    assert decide(Failure(FailureClass.PERMANENT), breaker=TargetBreaker()) == GiveUp(PERMANENT_REASON, False)


def test_the_attempts_exhausted_give_up() -> None:
    assert decide(attempts=3) == GiveUp("retry budget spent: 3 of 3 attempts made", False)
    assert decide(attempts=7) == GiveUp("retry budget spent: 7 of 3 attempts made", False)


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_a_rollback_is_never_retried(failure_class: FailureClass) -> None:
    assert decide(Failure(failure_class, is_rollback=True)) == GiveUp(ROLLBACK_REASON, False)


@pytest.mark.parametrize("failure_class", list(FailureClass))
def test_a_deployment_a_person_stopped_is_never_retried(failure_class: FailureClass) -> None:
    assert decide(Failure(failure_class, stopped_by_person=True)) == GiveUp(STOPPED_REASON, False)


def test_a_rollback_or_a_stop_that_trips_the_breaker_still_opens_it() -> None:
    tripping = TargetBreaker((AT - 60, AT - 30))
    assert decide(Failure(FailureClass.TRANSIENT, is_rollback=True), breaker=tripping) == GiveUp(ROLLBACK_REASON, True)
    assert decide(Failure(FailureClass.TRANSIENT, stopped_by_person=True), breaker=tripping) == GiveUp(STOPPED_REASON,
                                                                                                       True)


def test_an_open_breaker_gives_up_before_anything_else_is_weighed() -> None:
    expected = GiveUp("circuit breaker open: the target failed 1 times within 10 minutes; automatic retries stop until "
                      "a person redeploys", True)
    assert decide(breaker=TargetBreaker(open=True)) == expected
    assert decide(Failure(FailureClass.PERMANENT), attempts=9, breaker=TargetBreaker(open=True)) == expected


def test_the_breaker_trips_on_the_threshold_counting_this_failure_within_the_window() -> None:
    assert isinstance(decide(breaker=TargetBreaker((AT - 60,))), Retry)
    assert decide(breaker=TargetBreaker((AT - 60, AT - 30))) == GiveUp(
        "circuit breaker open: the target failed 3 times within 10 minutes; automatic retries stop until a person "
        "redeploys", True)
    # Failures older than the window do not count.
    assert isinstance(decide(breaker=TargetBreaker((AT - 601, AT - 700, AT - 5000))), Retry)


def test_a_failure_of_no_target_has_no_breaker() -> None:
    one = RetryPolicy(breaker=Breaker(threshold=1))
    assert isinstance(decide_retry(TRANSIENT, History(1), one, NOW, top), Retry)
    assert decide_retry(TRANSIENT, History(1, TargetBreaker()), one, NOW, top) == GiveUp(
        "circuit breaker open: the target failed 1 times within 60 minutes; automatic retries stop until a person "
        "redeploys", True)


@given(attempts=st.integers(1, 2), seed=st.integers(), base=st.integers(1, 3600), cap=st.integers(1, 86400))
def test_the_backoff_stays_within_zero_and_its_ceiling(attempts: int, seed: int, base: int, cap: int) -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=base, cap_seconds=cap)
    decision = decide_retry(TRANSIENT, History(attempts), policy, NOW, random.Random(seed).uniform)
    assert isinstance(decision, Retry)
    ceiling = min(cap, base * 2 ** (attempts - 1))
    assert 0 <= decision.delay_seconds <= ceiling
    assert decision.at == NOW + timedelta(seconds=decision.delay_seconds)


def test_the_backoff_with_a_fixed_rng_is_reproducible_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=30, cap_seconds=900)
    delays = [decide_retry(TRANSIENT, History(n), policy, NOW, top) for n in range(1, 8)]
    assert [d.delay_seconds for d in delays if isinstance(d, Retry)] == [30, 60, 120, 240, 480, 900, 900]
    seeded = [decide_retry(TRANSIENT, History(2), policy, NOW, random.Random(7).uniform) for _ in range(2)]
    assert seeded[0] == seeded[1]


def attempt(*results: InstanceResult) -> Attempt:
    return Attempt(number=1, started_at=NOW, instances={r.instance_id: r for r in results})


def test_an_attempt_is_as_bad_as_its_worst_failed_instance_and_cancelled_ones_say_nothing() -> None:
    ok = InstanceResult(instance_id="i-1", status="Success", response_code=0, output_tail="berth-step: health")
    pull = InstanceResult(instance_id="i-2", status="Failed", response_code=21)
    cancelled = InstanceResult(instance_id="i-3", status="Cancelled", output_tail="bash: docker: command not found")
    health = InstanceResult(instance_id="i-4", status="Failed", response_code=40)
    assert classify_attempt(attempt(ok, pull, cancelled)) == FailureClass.TRANSIENT
    assert classify_attempt(attempt(ok, pull, health)) == FailureClass.PERMANENT
    assert classify_attempt(attempt(ok, cancelled)) == FailureClass.REMEDIABLE     # only cancelled ones failed
    assert classify_attempt(attempt(ok)) == FailureClass.TRANSIENT                 # nothing to read: transient


def test_out_of_disk_is_remediable_once_then_permanent_and_its_reason_says_so() -> None:
    full = InstanceResult(instance_id="i-1", status="Failed", response_code=ScriptExit.NO_SPACE)
    pull = InstanceResult(instance_id="i-1", status="Failed", response_code=21)
    assert classify_attempt(attempt(full)) == FailureClass.REMEDIABLE
    assert classify_attempt(attempt(full), earlier=[attempt(pull)]) == FailureClass.REMEDIABLE
    assert classify_attempt(attempt(full), earlier=[attempt(full)]) == FailureClass.PERMANENT
    assert classify_attempt(attempt(pull), earlier=[attempt(full)]) == FailureClass.TRANSIENT
    assert remedy_of(attempt(pull)) == ""
    decision = decide_retry(Failure(FailureClass.REMEDIABLE, remedy=remedy_of(attempt(full))), History(1),
                            RetryPolicy(), NOW, top)
    assert isinstance(decision, Retry) and decision.remediate_first
    assert decision.reason.startswith("no space left on device: the instances pruned the container's images older")
    docker = decide_retry(Failure(FailureClass.REMEDIABLE), History(1), RetryPolicy(), NOW, top)
    assert isinstance(docker, Retry) and docker.reason == "Docker is missing on some instances: install it, then retry"
    assert classify_attempt(attempt(InstanceResult(instance_id="i-2", status="Failed",
                                                   response_code=ScriptExit.ARCHITECTURE_MISMATCH))) == (
        FailureClass.PERMANENT)
