"""The circuit breaker's window of recent failures: what a new failure keeps and adds."""

from __future__ import annotations

from chalicelib.domain.target import failure_window


def test_a_new_failure_is_added_newest_last() -> None:
    assert failure_window((100, 200), at=300, keep_after=0) == (100, 200, 300)


def test_failures_before_the_window_are_dropped_and_its_edge_is_kept() -> None:
    assert failure_window((100, 150, 200), at=300, keep_after=150) == (150, 200, 300)


def test_two_failures_in_the_same_second_both_count() -> None:
    assert failure_window((300,), at=300, keep_after=0) == (300, 300)


def test_an_empty_window_holds_only_the_new_failure() -> None:
    assert failure_window((), at=300, keep_after=300) == (300,)
