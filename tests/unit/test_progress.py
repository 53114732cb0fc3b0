"""Where a command stands, from what SSM reports: running, succeeded, or failed with a message a person can act on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.deployment import Tally
from chalicelib.domain.progress import (
    FINAL_COMMAND_STATUSES,
    FINAL_INVOCATION_STATUSES,
    MAX_FAILURE_MESSAGE,
    CommandState,
    Phase,
    Progress,
    assess,
    keep_tails,
    progress_while_running,
    success_from_counts,
    tally_counts,
    tally_results,
)
from tests.unit.progress_helpers import NEVER_RAN_TAIL, A, B, C, D, inv, never_ran, result

# ------------------------------------------------------------------------------------------------ phases

def test_running_while_some_invocations_are_in_progress() -> None:
    progress = assess([A, B, C], [inv(A), inv(B, "InProgress", None), inv(C, "Pending", None)], "InProgress")
    assert progress == Progress(
        Phase.RUNNING, {A: result(A), B: result(B, "InProgress", None), C: result(C, "Pending", None)}, 33,
        "1 succeeded, 0 failed, 2 pending of 3 instances")


def test_running_before_any_invocation_is_listed() -> None:
    assert assess([A, B], [], "Pending") == Progress(Phase.RUNNING, {}, 0,
                                                     "0 succeeded, 0 failed, 2 pending of 2 instances")
    assert assess([A, B], [], None) == Progress(Phase.RUNNING, {}, 0, "0 succeeded, 0 failed, 2 pending of 2 instances")


def test_still_running_when_the_command_is_over_but_an_invocation_is_not() -> None:
    progress = assess([A, B], [inv(A), inv(B, "InProgress", None)], "Success")
    assert (progress.phase, progress.percent, progress.failure_message) == (Phase.RUNNING, 50, "")


def test_still_running_when_every_invocation_is_final_but_the_command_is_not() -> None:
    progress = assess([A, B], [inv(A), inv(B)], "InProgress")
    assert (progress.phase, progress.percent) == (Phase.RUNNING, 99)


def test_all_succeeded() -> None:
    progress = assess([A, B, C], [inv(A), inv(B), inv(C)], "Success")
    assert progress == Progress(Phase.SUCCEEDED, {A: result(A), B: result(B), C: result(C)}, 100,
                                "3 succeeded, 0 failed, 0 pending of 3 instances")


def test_success_with_no_response_code_counts_as_success() -> None:
    assert assess([A], [inv(A, code=None)], "Success").phase == Phase.SUCCEEDED


def test_a_success_status_with_a_nonzero_code_is_a_failure() -> None:
    progress = assess([A], [inv(A, "Success", 21)], "Success")
    assert (progress.phase, progress.summary) == (Phase.FAILED, "0 succeeded, 1 failed, 0 pending of 1 instances")


def test_a_failure_beyond_a_zero_budget_fails_the_command() -> None:
    progress = assess([A, B], [inv(A), inv(B, "Failed", 21, "berth-step: pull\nerror pulling\n")], "Failed")
    assert progress == Progress(
        Phase.FAILED, {A: result(A), B: result(B, "Failed", 21, step="pull", output_tail="berth-step: pull\n"
                                                                                        "error pulling\n")},
        100, "1 succeeded, 1 failed, 0 pending of 2 instances",
        "1 of 2 instances failed. i-0000000000000000b in step pull, exit 21: image pull failed; the running "
        "container was not touched (transient); output ends: berth-step: pull\nerror pulling")


@pytest.mark.parametrize(("failures", "max_errors", "phase"), [
    (0, "0", Phase.SUCCEEDED),
    (1, "0", Phase.FAILED),
    (1, "1", Phase.SUCCEEDED),
    (2, "1", Phase.FAILED),
    (3, "3", Phase.SUCCEEDED),
    (2, "20%", Phase.SUCCEEDED),   # 20% of 10 is 2
    (2, "19%", Phase.FAILED),      # 19% of 10 rounds down to 1
    (1, "10%", Phase.SUCCEEDED),
    (1, "9%", Phase.FAILED),       # rounds down to 0
    (9, "100%", Phase.SUCCEEDED),
    (10, "100%", Phase.FAILED),    # no instance succeeded: never a success, whatever the budget
    (10, "99%", Phase.FAILED),
    (5, "0%", Phase.FAILED),
])
def test_error_budget_by_count_and_percent(failures: int, max_errors: str, phase: Phase) -> None:
    ids = [f"i-{n:017x}" for n in range(10)]
    invocations = [inv(i, "Failed", 30) if n < failures else inv(i) for n, i in enumerate(ids)]
    progress = assess(ids, invocations, "Failed" if failures else "Success", max_errors)
    assert (progress.phase, progress.percent) == (phase, 100)
    assert progress.summary == f"{10 - failures} succeeded, {failures} failed, 0 pending of 10 instances"
    assert (progress.failure_message != "") == (phase == Phase.FAILED)


def test_expected_instances_without_an_invocation_never_ran_once_the_command_is_over() -> None:
    progress = assess([A, B, C], [inv(A), inv(B)], "Success")
    assert progress == Progress(
        Phase.FAILED, {A: result(A), B: result(B), C: never_ran(C)}, 100,
        "2 succeeded, 1 failed, 0 pending of 3 instances",
        f"1 of 3 instances failed. {C} never ran the command; output ends: {NEVER_RAN_TAIL}")


def test_never_ran_within_the_error_budget() -> None:
    progress = assess([A, B, C], [inv(A), inv(B)], "Success", max_errors="1")
    assert (progress.phase, progress.instances[C]) == (Phase.SUCCEEDED, never_ran(C))


def test_missing_invocations_are_pending_while_the_command_runs() -> None:
    progress = assess([A, B, C], [inv(A), inv(B)], "InProgress")
    assert (progress.phase, progress.summary, set(progress.instances)) == (
        Phase.RUNNING, "2 succeeded, 0 failed, 1 pending of 3 instances", {A, B})


@pytest.mark.parametrize("status", sorted(FINAL_COMMAND_STATUSES))
def test_a_final_command_that_reached_no_instance_fails(status: str) -> None:
    progress = assess([], [], status)
    assert (progress.phase, progress.instances, progress.percent, progress.failure_message) == (
        Phase.FAILED, {}, 100,
        "the command reached no instance: no instance matched the target, or none is managed by SSM")


def test_the_summary_of_a_command_that_reached_no_instance_counts_none() -> None:
    assert assess([], [], "Success").summary == "0 succeeded, 0 failed, 0 pending of 0 instances"


def test_a_final_command_with_expected_instances_but_no_invocations_fails_each_as_never_ran() -> None:
    progress = assess([A, B], [], "Success")
    assert (progress.phase, progress.instances) == (Phase.FAILED, {A: never_ran(A), B: never_ran(B)})
    assert progress.failure_message.startswith("2 of 2 instances failed. ")


def test_invocations_outside_the_expected_list_count_too() -> None:
    progress = assess([A], [inv(A), inv(B, "Failed", 40)], "Failed")
    assert (progress.phase, progress.summary) == (Phase.FAILED, "1 succeeded, 1 failed, 0 pending of 2 instances")


@pytest.mark.parametrize("status", ["TimedOut", "Cancelled", "DeliveryTimedOut", "Undeliverable", "Terminated",
                                    "InvalidPlatform", "AccessDenied", "Failed"])
def test_every_final_failure_status_counts_as_failed(status: str) -> None:
    progress = assess([A, B], [inv(A), inv(B, status, -1)], "Failed")
    assert (progress.phase, progress.summary) == (Phase.FAILED, "1 succeeded, 1 failed, 0 pending of 2 instances")


_STATUSES = [*sorted(FINAL_INVOCATION_STATUSES), "Pending", "InProgress", "Delayed", "Cancelling"]


@given(
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from(_STATUSES), st.one_of(st.none(), st.integers(-1, 255))),
             max_size=30, unique_by=lambda t: t[0]),
    st.lists(st.integers(0, 40), max_size=30, unique=True),
    st.one_of(st.none(), st.sampled_from(["Pending", "InProgress", "Success", "Failed", "TimedOut", "Cancelled",
                                          "Cancelling"])),
    st.sampled_from(["0", "1", "5", "10%", "50%", "100%"]),
)
@settings(max_examples=300, deadline=None)
def test_percent_stays_within_bounds(invocations: list[tuple[int, str, int | None]], expected: list[int],
                                     command_status: str | None, max_errors: str) -> None:
    progress = assess([f"i-{n:017x}" for n in expected],
                      [inv(f"i-{n:017x}", status, code) for n, status, code in invocations], command_status,
                      max_errors)
    assert 0 <= progress.percent <= 100
    if progress.phase == Phase.RUNNING:
        assert progress.percent <= 99
        assert progress.failure_message == ""
    else:
        assert progress.percent == 100
        assert command_status in FINAL_COMMAND_STATUSES
    assert (progress.failure_message != "") == (progress.phase == Phase.FAILED)
    assert len(progress.failure_message) <= MAX_FAILURE_MESSAGE


# ------------------------------------------------------------------------------------------------ counts while running

def test_progress_while_running_comes_from_the_commands_counts() -> None:
    state = CommandState("InProgress", target_count=4, completed_count=3, error_count=1, delivery_timed_out_count=1)
    assert progress_while_running([A, B, C, D], state) == Progress(
        Phase.RUNNING, {}, 75, "1 succeeded, 2 failed, 1 pending of 4 instances")


def test_progress_before_ssm_lists_the_command_is_all_pending() -> None:
    assert progress_while_running([A, B], None) == Progress(Phase.RUNNING, {}, 0,
                                                            "0 succeeded, 0 failed, 2 pending of 2 instances")
    assert tally_counts([A, B], None) == Tally(total=2, succeeded=0, failed=0, pending=2)


def test_instances_ssm_targeted_beyond_the_expected_ones_are_counted() -> None:
    """Tag targets resolve again inside SSM: an instance tagged after berth looked is part of the command."""
    assert tally_counts([A], CommandState("InProgress", target_count=3, completed_count=1)) == Tally(
        total=3, succeeded=1, failed=0, pending=2)


def test_a_running_command_never_reports_100_percent() -> None:
    state = CommandState("InProgress", target_count=2, completed_count=2)
    assert progress_while_running([A, B], state).percent == 99


@settings(max_examples=300)
@given(expected=st.integers(0, 2000), target=st.integers(0, 2000), completed=st.integers(0, 2500),
       errors=st.integers(0, 2500), timed_out=st.integers(0, 2500))
def test_counts_always_make_a_consistent_tally(expected: int, target: int, completed: int, errors: int,
                                               timed_out: int) -> None:
    """Whatever SSM's counts say (even ones that disagree with each other), the tally adds up and is never negative."""
    ids = [f"i-{n:017x}" for n in range(expected)]
    state = CommandState("InProgress", target_count=target, completed_count=completed, error_count=errors,
                         delivery_timed_out_count=timed_out)
    tally = tally_counts(ids, state)
    assert min(tally.succeeded, tally.failed, tally.pending) >= 0
    assert tally.succeeded + tally.failed + tally.pending == tally.total == max(expected, target)
    progress = progress_while_running(ids, state)
    assert progress.phase == Phase.RUNNING and 0 <= progress.percent <= 99


def test_tally_of_results_counts_never_ran_as_failed_and_unlisted_as_pending() -> None:
    results = {A: result(A), B: result(B, "Failed", 21), C: never_ran(C)}
    assert tally_results([A, B, C, D], results) == Tally(total=4, succeeded=1, failed=2, pending=1)


def test_command_state_is_over_only_in_a_final_status() -> None:
    assert [CommandState(status).over for status in ("Pending", "InProgress", "Cancelling", *FINAL_COMMAND_STATUSES)
            ] == [False, False, False] + [True] * len(FINAL_COMMAND_STATUSES)


# ------------------------------------------------------------------------------------------------ success from counts

CLEAN = CommandState("Success", "Success", target_count=3, completed_count=3)


def test_a_clean_success_with_every_expected_instance_targeted_needs_no_result_page() -> None:
    progress = success_from_counts([A, B, C], CLEAN)
    assert progress == Progress(Phase.SUCCEEDED, {}, 100, "3 succeeded, 0 failed, 0 pending of 3 instances")


@pytest.mark.parametrize("expected, state", [
    ([A, B, C], CommandState("Success", "Incomplete", target_count=3, completed_count=3)),      # one did not succeed
    ([A, B, C, D], CLEAN),                                                                         # one never targeted
    ([A, B], CLEAN),                                                                               # one unexpected
    ([A, B, C], CommandState("Success", "Success", target_count=3, completed_count=2)),          # counts lag
    ([A, B, C], CommandState("Success", "Success", target_count=3, completed_count=3, error_count=1)),
    ([A, B, C], CommandState("Success", "Success", target_count=3, completed_count=3, delivery_timed_out_count=1)),
    ([A, B, C], CommandState("Failed", "Failed", target_count=3, completed_count=3, error_count=3)),
    ([A, B, C], CommandState("Cancelled", "Cancelled", target_count=3, completed_count=3)),
    ([], CommandState("Success", "NoInstancesInTag")),
])
def test_anything_short_of_a_clean_success_has_the_results_read(expected: list[str], state: CommandState) -> None:
    assert success_from_counts(expected, state) is None


def test_the_record_keeps_the_tails_of_the_first_failed_instances_only() -> None:
    results = {i: result(i, "Failed", 21, output_tail=f"out {i}") for i in (D, C, B)} | {A: result(A)}
    kept = keep_tails(results, limit=2)
    assert kept == {A: result(A), B: results[B], C: results[C],
                    D: result(D, "Failed", 21, output_tail="")}
    assert keep_tails(results) == results


def test_succeeded_instances_keep_no_tail_and_failed_ones_come_first() -> None:
    """Output of instances that succeeded never takes the place of a failed one's."""
    results = {A: result(A, output_tail="pulled"), B: result(B, output_tail="pulled"),
               C: result(C, "Failed", 127, output_tail="docker: command not found")}
    assert keep_tails(results, limit=1) == {A: result(A), B: result(B), C: results[C]}


def test_each_progress_carries_the_tally_the_record_keeps() -> None:
    assert assess([A, B, C], [inv(A), inv(B, "Failed", 21)], "Failed").tally == Tally(
        total=3, succeeded=1, failed=2, pending=0)           # C never ran
    assert progress_while_running([A, B], CommandState("InProgress", target_count=2, completed_count=1)).tally == \
        Tally(total=2, succeeded=1, failed=0, pending=1)
    assert success_from_counts([A, B, C], CLEAN).tally == Tally(total=3, succeeded=3)  # type: ignore[union-attr]
