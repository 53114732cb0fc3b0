"""Properties of the Run Command model itself (no moto): rate control never breaks its own rules."""

from __future__ import annotations

import datetime
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from localaws import InstanceOutcome
from localaws.ssm_runs import CommandRun, Invocation

outcomes = st.builds(
    InstanceOutcome,
    status=st.sampled_from(["Success", "Success", "Failed", "TimedOut", "DeliveryTimedOut"]),
    polls_before_done=st.integers(0, 3),
)
counts = st.integers(1, 12).map(str)
percents = st.integers(1, 100).map(lambda n: f"{n}%")


def _run(items: list[InstanceOutcome], concurrency: str, errors: str) -> CommandRun:
    run = CommandRun(
        command_id="c",
        document_name="AWS-RunShellScript",
        comment="",
        requested=datetime.datetime(2026, 1, 1),
        by_targets=False,
        max_errors=errors,
        max_concurrency=concurrency,
    )
    for index, outcome in enumerate(items):
        run.invocations[f"i-{index:017x}"] = Invocation(f"i-{index:017x}", outcome)
    run.advance()
    return run


def _window(run: CommandRun) -> int:
    total, value = len(run.invocations), run.max_concurrency
    return max(1, total * int(value[:-1]) // 100 if value.endswith("%") else int(value))


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(outcomes, min_size=1, max_size=12),
    concurrency=st.one_of(counts, percents),
    errors=st.one_of(st.integers(0, 5).map(str), percents),
    order=st.randoms(use_true_random=False),
)
def test_polling_always_finishes_within_the_rules(
    items: list[InstanceOutcome], concurrency: str, errors: str, order: random.Random
) -> None:
    run = _run(items, concurrency, errors)
    for _ in range(200):
        in_flight = [i for i in run.invocations.values() if i.kind == "InProgress"]
        assert len(in_flight) <= _window(run)
        if not in_flight:
            break
        run.read(order.choice(in_flight))
    kinds = [i.kind for i in run.invocations.values()]
    assert "InProgress" not in kinds and "Pending" not in kinds
    counted = run.counts()
    assert counted["CompletedCount"] == counted["TargetCount"] == len(items)
    status, details = run.status()
    if "Terminated" in kinds:
        assert counted["ErrorCount"] > 0 and status in ("Failed", "TimedOut")
    if all(kind == "Success" for kind in kinds):
        assert (status, details) == ("Success", "Success")


@given(items=st.lists(outcomes, min_size=1, max_size=12), errors=st.integers(0, 3))
def test_one_at_a_time_never_exceeds_max_errors_by_more_than_one(items: list[InstanceOutcome], errors: int) -> None:
    run = _run(items, "1", str(errors))
    while any(i.kind == "InProgress" for i in run.invocations.values()):
        run.read(next(i for i in run.invocations.values() if i.kind == "InProgress"))
    assert run.counts()["ErrorCount"] <= errors + 1
