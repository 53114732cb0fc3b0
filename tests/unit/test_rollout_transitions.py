"""The rollout in waves as a state machine: every (state, event) pair, and each legal move's whole result."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.domain import transitions as t
from chalicelib.domain.deployment import Attempt, Decision, Deployment, DeploymentStatus, Revision, Tally
from chalicelib.domain.errors import IllegalTransition
from chalicelib.domain.retry import Retry
from chalicelib.domain.rollout import Rollout, RolloutPhase
from chalicelib.domain.spec import TargetSpec
from tests.unit.test_transitions import documented_moves

from .conftest import EXAMPLE_SPEC

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=5)
S, P = DeploymentStatus, RolloutPhase
SPEC = TargetSpec.model_validate({**{k: v for k, v in EXAMPLE_SPEC.items() if k != "image"}, "rollout": {
    "canary": {"instances": 1, "bake_seconds": 60}, "alarms": ["web-5xx"]}})
CREATED = Decision(at=T0, action="created", detail="web@sha256:aa by alice", cause="pipeline")
WAVES = [["i-1"], ["i-2", "i-3"]]
PLAN = Rollout(waves=WAVES)
RETRY = Retry(attempt=2, at=AT, delay_seconds=30, remediate_first=False, reason="transient")
PREVIOUS = "registry/web@sha256:" + "b" * 64


def deployment(status: DeploymentStatus = S.IN_PROGRESS, attempts: list[Attempt] | None = None,
               rollout: Rollout | None = None) -> Deployment:
    return Deployment(deployment_id="dep-1", target="web-prod", spec=SPEC,
                      revision=Revision(image="registry/web:1", digest="sha256:" + "a" * 64), trigger="pipeline",
                      caller="alice", status=status, attempts=attempts or [], history=[CREATED], created_at=T0,
                      updated_at=T0, version=3, rollout=rollout)


def wave(number: int, **changes: object) -> Attempt:
    return Attempt(**{"number": number, "started_at": T0, "expected_instances": WAVES[number - 1], "sends": 1,
                      "sent_at": T0, "wave": number, "command_id": f"c-{number}", **changes})


PASSED = wave(1, ended_at=T0, outcome="succeeded")
SWAPPED = wave(2, ended_at=T0, outcome="succeeded")
DRAINING = PLAN.model_copy(update={"phase": P.DRAINING, "wave": 2, "out_of_groups": True})
ROLLBACK = Attempt(number=2, started_at=T0, expected_instances=["i-1"], sends=1, sent_at=T0, image=PREVIOUS,
                   command_id="c-r")
# A record as each state finds it ("IN_PROGRESS" alone: a deployment that is not a rollout in waves).
RECORDS: dict[str, Deployment] = {
    "PENDING": deployment(S.PENDING),
    "IN_PROGRESS": deployment(S.IN_PROGRESS, [Attempt(number=1, started_at=T0, expected_instances=["i-1"])]),
    "IN_PROGRESS/WAVE": deployment(S.IN_PROGRESS, [wave(1)], PLAN),
    "IN_PROGRESS/BAKING": deployment(S.IN_PROGRESS, [PASSED], PLAN.model_copy(update={
        "phase": P.BAKING, "baking_since": T0})),
    "IN_PROGRESS/BAKING (last)": deployment(S.IN_PROGRESS, [PASSED, wave(2, ended_at=T0, outcome="succeeded")],
                                            PLAN.model_copy(update={"phase": P.BAKING, "wave": 2,
                                                                    "baking_since": T0})),
    "IN_PROGRESS/STOPPING": deployment(S.IN_PROGRESS, [wave(1)], PLAN.model_copy(update={
        "phase": P.STOPPING, "stop_reason": "alarm 'web-5xx' is in ALARM: 5xx"})),
    "IN_PROGRESS/ROLLING_BACK": deployment(S.IN_PROGRESS, [PASSED, ROLLBACK], PLAN.model_copy(update={
        "phase": P.ROLLING_BACK, "stop_reason": "alarm 'web-5xx' is in ALARM: 5xx"})),
    # Behind a load balancer: the second batch drained, swapped, registered; a halt with the batch still out.
    "IN_PROGRESS/DRAINING": deployment(S.IN_PROGRESS, [PASSED], DRAINING),
    "IN_PROGRESS/DRAINING (deregistered)": deployment(S.IN_PROGRESS, [PASSED], DRAINING.model_copy(update={
        "elb_done_at": T0, "drain_seconds": 300})),
    "IN_PROGRESS/WAVE (drained)": deployment(S.IN_PROGRESS, [PASSED, wave(2)], DRAINING.model_copy(update={
        "phase": P.WAVE, "elb_done_at": T0})),
    "IN_PROGRESS/REGISTERING": deployment(S.IN_PROGRESS, [PASSED, SWAPPED], DRAINING.model_copy(update={
        "phase": P.REGISTERING})),
    "IN_PROGRESS/REGISTERING (registered)": deployment(S.IN_PROGRESS, [PASSED, SWAPPED], DRAINING.model_copy(update={
        "phase": P.REGISTERING, "out_of_groups": False, "elb_done_at": T0, "healthy_within": 60})),
    "IN_PROGRESS/STOPPING (out)": deployment(S.IN_PROGRESS, [PASSED], DRAINING.model_copy(update={
        "phase": P.STOPPING, "stop_reason": "alarm 'web-5xx' is in ALARM: 5xx"})),
    **{s.value: deployment(s, [PASSED], PLAN) for s in (S.RETRYING, S.SUCCEEDED, S.FAILED, S.CANCELLED,
                                                        S.ROLLED_BACK)},
}
TRANSITIONS: dict[str, Callable[[Deployment], Deployment]] = {
    "wave_sent": lambda d: t.wave_sent(d, AT, PLAN if d.rollout is None else None),
    "wave_sent_in_place": lambda d: t.wave_sent(d, AT, PLAN if d.rollout is None else None, in_place=True),
    "batch_draining": lambda d: t.batch_draining(d, AT, PLAN if d.rollout is None else None),
    "batch_deregistered": lambda d: t.batch_deregistered(d, 300, AT),
    "batch_swapped": lambda d: t.batch_swapped(d, "2 succeeded", AT),
    "batch_registered": lambda d: t.batch_registered(d, 60, AT),
    "batch_healthy": lambda d: t.batch_healthy(d, "2 healthy", AT),
    "wave_passed": lambda d: t.wave_passed(d, "1 succeeded", AT),
    "rollout_halted": lambda d: t.rollout_halted(d, "alarm 'web-5xx' is in ALARM: 5xx", "continuation", AT),
    "rollback_sent": lambda d: t.rollback_sent(d, ["i-1"], PREVIOUS, AT),
    "rolled_back": lambda d: t.rolled_back(d, "rolled back", AT),
    "succeeded": lambda d: t.succeeded(d, "baked", set(), AT),
    "retry_scheduled": lambda d: t.retry_scheduled(d, "boom", RETRY, "s", "c", AT),
    "progress_recorded": lambda d: t.progress_recorded(d, Tally(total=1, pending=1), AT),
}
LEGAL: dict[tuple[str, str], str] = {
    ("PENDING", "wave_sent"): "IN_PROGRESS/WAVE",
    ("IN_PROGRESS/BAKING", "wave_sent"): "IN_PROGRESS/WAVE",
    ("IN_PROGRESS/WAVE", "wave_passed"): "IN_PROGRESS/BAKING",
    ("IN_PROGRESS/WAVE", "rollout_halted"): "IN_PROGRESS/STOPPING",
    ("IN_PROGRESS/BAKING", "rollout_halted"): "IN_PROGRESS/STOPPING",
    ("IN_PROGRESS/BAKING (last)", "rollout_halted"): "IN_PROGRESS/STOPPING",
    ("PENDING", "wave_sent_in_place"): "IN_PROGRESS/WAVE",
    ("IN_PROGRESS/BAKING", "wave_sent_in_place"): "IN_PROGRESS/WAVE",
    ("PENDING", "batch_draining"): "IN_PROGRESS/DRAINING",
    ("IN_PROGRESS/BAKING", "batch_draining"): "IN_PROGRESS/DRAINING",
    ("IN_PROGRESS/DRAINING", "batch_deregistered"): "IN_PROGRESS/DRAINING",
    ("IN_PROGRESS/DRAINING (deregistered)", "wave_sent"): "IN_PROGRESS/WAVE",
    ("IN_PROGRESS/WAVE (drained)", "batch_swapped"): "IN_PROGRESS/REGISTERING",
    ("IN_PROGRESS/REGISTERING", "batch_registered"): "IN_PROGRESS/REGISTERING",
    ("IN_PROGRESS/STOPPING (out)", "batch_registered"): "IN_PROGRESS/STOPPING",
    ("IN_PROGRESS/REGISTERING (registered)", "batch_healthy"): "IN_PROGRESS/BAKING",
    **{(state, "rollout_halted"): "IN_PROGRESS/STOPPING" for state in (
        "IN_PROGRESS/DRAINING", "IN_PROGRESS/DRAINING (deregistered)", "IN_PROGRESS/WAVE (drained)",
        "IN_PROGRESS/REGISTERING", "IN_PROGRESS/REGISTERING (registered)")},
    ("IN_PROGRESS/STOPPING", "rollback_sent"): "IN_PROGRESS/ROLLING_BACK",
    ("IN_PROGRESS/STOPPING", "rolled_back"): "ROLLED_BACK",
    ("IN_PROGRESS/ROLLING_BACK", "rolled_back"): "ROLLED_BACK",
    ("IN_PROGRESS/BAKING (last)", "succeeded"): "SUCCEEDED",
    ("IN_PROGRESS", "succeeded"): "SUCCEEDED",
    ("IN_PROGRESS", "retry_scheduled"): "RETRYING",
    **{(state, "progress_recorded"): state.split(" (")[0] for state in (
        "IN_PROGRESS", "IN_PROGRESS/WAVE", "IN_PROGRESS/STOPPING", "IN_PROGRESS/ROLLING_BACK",
        "IN_PROGRESS/WAVE (drained)", "IN_PROGRESS/STOPPING (out)")},
}


def state_of(d: Deployment) -> str:
    return f"{d.status.value}/{d.rollout.phase.value}" if d.rollout and d.status == S.IN_PROGRESS else d.status.value


@pytest.mark.parametrize("name", list(RECORDS))
@pytest.mark.parametrize("event", list(TRANSITIONS))
def test_every_state_and_event(name: str, event: str) -> None:
    record = RECORDS[name]
    if (name, event) in LEGAL:
        assert state_of(TRANSITIONS[event](record)) == LEGAL[(name, event)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            TRANSITIONS[event](record)
        assert raised.value == IllegalTransition("dep-1", state_of(record), event.removesuffix("_in_place"))


def test_docs_architecture_tables_the_rollout_moves() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    table = docs[docs.index("A rollout in waves"):docs.index("## Locks, retries")]
    rollout_events = {"wave_sent", "wave_sent_in_place", "wave_passed", "rollout_halted", "rollback_sent",
                      "rolled_back", "batch_draining", "batch_deregistered", "batch_swapped", "batch_registered",
                      "batch_healthy"}
    expected = {(name.split(" (")[0], event.removesuffix("_in_place")): to for (name, event), to in LEGAL.items()
                if event in rollout_events or (event == "succeeded" and "/" in name)}
    assert documented_moves(table) == expected


def test_the_first_wave_claims_the_plan_and_the_canary_attempt() -> None:
    assert t.wave_sent(RECORDS["PENDING"], AT, PLAN) == deployment(S.IN_PROGRESS, [Attempt(
        number=1, started_at=AT, expected_instances=["i-1"], sends=1, sent_at=AT, wave=1)], PLAN).model_copy(
        update={"updated_at": AT})


def test_an_empty_plan_is_no_wave() -> None:
    with pytest.raises(IllegalTransition):
        t.wave_sent(RECORDS["PENDING"], AT, Rollout(waves=[]))


def test_the_command_of_a_wave_is_recorded_as_the_wave() -> None:
    sent = t.command_sent(deployment(S.IN_PROGRESS, [wave(1, command_id=None)], PLAN), "c-9", "pipeline", AT)
    assert sent.history[-1] == Decision(at=AT, action="dispatched", cause="pipeline",
                                        detail="attempt 1, wave 1 of 2: SSM command c-9 to 1 instances")


def test_a_passed_wave_bakes_from_now_and_the_next_wave_follows_it() -> None:
    baking = t.wave_passed(RECORDS["IN_PROGRESS/WAVE"], "1 succeeded", AT)
    assert baking == deployment(S.IN_PROGRESS, [wave(1, ended_at=AT, outcome="succeeded")], PLAN.model_copy(
        update={"phase": P.BAKING, "baking_since": AT})).model_copy(update={"updated_at": AT, "history": [
            CREATED, Decision(at=AT, action="wave-passed", detail="wave 1 of 2: 1 succeeded; baking")]})
    later = AT + timedelta(seconds=61)
    assert t.wave_sent(baking, later) == baking.model_copy(update={
        "updated_at": later, "rollout": PLAN.model_copy(update={"wave": 2}), "attempts": [
            *baking.attempts, Attempt(number=2, started_at=later, expected_instances=["i-2", "i-3"], sends=1,
                                      sent_at=later, wave=2)]})


def test_a_halt_names_its_reason_and_the_rollback_ends_the_halted_wave() -> None:
    reason = "alarm 'web-5xx' is in ALARM: 5xx"
    halted = t.rollout_halted(RECORDS["IN_PROGRESS/WAVE"], reason, "continuation", AT)
    assert halted == RECORDS["IN_PROGRESS/STOPPING"].model_copy(update={
        "updated_at": AT, "message": reason, "history": [
            CREATED, Decision(at=AT, action="halted", detail=f"wave 1 of 2: {reason}", cause="continuation")]})
    rolling = t.rollback_sent(halted, ["i-1"], PREVIOUS, AT)
    assert rolling.attempts == [wave(1, ended_at=AT, outcome=reason), Attempt(
        number=2, started_at=AT, expected_instances=["i-1"], sends=1, sent_at=AT, image=PREVIOUS)]
    assert rolling.rollout == halted.rollout.model_copy(update={"phase": P.ROLLING_BACK})   # type: ignore[union-attr]
    assert rolling.history[-1] == Decision(at=AT, action="rolling-back", cause=reason,
                                           detail=f"{PREVIOUS} to 1 instances: i-1")
    with pytest.raises(IllegalTransition):
        t.rollback_sent(halted, [], PREVIOUS, AT)


def test_rolled_back_is_final_and_ends_the_rollback_attempt() -> None:
    done = t.rolled_back(RECORDS["IN_PROGRESS/ROLLING_BACK"], "rolled back: alarm", AT)
    assert (done.status, done.message, done.attempts[-1].ended_at, done.attempts[-1].outcome) == (
        S.ROLLED_BACK, "rolled back: alarm", AT, "rolled back: alarm")
    assert done.attempts[0] == PASSED
    assert done.history[-1] == Decision(at=AT, action="rolled_back", detail="rolled back: alarm")
    assert S.ROLLED_BACK.is_final


def test_success_after_the_last_bake_keeps_the_waves_own_ends() -> None:
    done = t.succeeded(RECORDS["IN_PROGRESS/BAKING (last)"], "baked", set(), AT)
    assert done.status == S.SUCCEEDED
    assert done.attempts == RECORDS["IN_PROGRESS/BAKING (last)"].attempts


def test_a_batch_drains_then_swaps_then_registers_then_bakes() -> None:
    draining = t.batch_draining(RECORDS["IN_PROGRESS/BAKING"], AT)
    assert draining == RECORDS["IN_PROGRESS/DRAINING"].model_copy(update={"updated_at": AT, "history": [
        CREATED, Decision(at=AT, action="draining", detail="wave 2 of 2: deregistering 2 instances: i-2, i-3")]})
    later = AT + timedelta(seconds=5)
    deregistered = t.batch_deregistered(draining, 300, later)
    assert deregistered.rollout == draining.rollout.model_copy(  # type: ignore[union-attr]
        update={"elb_done_at": later, "drain_seconds": 300})
    swapping = t.wave_sent(deregistered, later)
    assert swapping.rollout == deregistered.rollout.model_copy(update={"phase": P.WAVE})  # type: ignore[union-attr]
    assert swapping.attempts[-1] == Attempt(number=2, started_at=later, expected_instances=["i-2", "i-3"], sends=1,
                                            sent_at=later, wave=2)
    swapped = t.batch_swapped(swapping, "2 succeeded", later)
    assert swapped.rollout == swapping.rollout.model_copy(  # type: ignore[union-attr]
        update={"phase": P.REGISTERING, "elb_done_at": None})
    assert swapped.attempts[-1].outcome == "succeeded"
    assert swapped.history[-1] == Decision(at=later, action="wave-passed", detail="wave 2 of 2: 2 succeeded; "
                                                                                  "registering")
    registered = t.batch_registered(swapped, 60, later)
    assert registered.rollout == swapped.rollout.model_copy(  # type: ignore[union-attr]
        update={"out_of_groups": False, "elb_done_at": later, "healthy_within": 60})
    healthy = t.batch_healthy(registered, "2 healthy", later)
    assert healthy.rollout == registered.rollout.model_copy(  # type: ignore[union-attr]
        update={"phase": P.BAKING, "baking_since": later})
    assert t.succeeded(healthy, "baked", set(), later).status == S.SUCCEEDED


def test_a_drained_batch_is_never_swapped_before_its_deregistration_was_answered() -> None:
    with pytest.raises(IllegalTransition):
        t.wave_sent(RECORDS["IN_PROGRESS/DRAINING"], AT)
    with pytest.raises(IllegalTransition):
        t.wave_sent(RECORDS["IN_PROGRESS/DRAINING (deregistered)"], AT, in_place=True)
    with pytest.raises(IllegalTransition):
        t.wave_passed(RECORDS["IN_PROGRESS/WAVE (drained)"], "2 succeeded", AT)


def test_nothing_ends_while_a_batch_is_out_of_its_groups() -> None:
    out = RECORDS["IN_PROGRESS/STOPPING (out)"]
    for end in (lambda d: t.rollback_sent(d, ["i-1"], PREVIOUS, AT), lambda d: t.rolled_back(d, "rolled back", AT)):
        with pytest.raises(IllegalTransition):
            end(out)
    back = t.batch_registered(out, 60, AT)
    assert back.rollout == out.rollout.model_copy(update={"out_of_groups": False})  # type: ignore[union-attr]
    assert t.rollback_sent(back, ["i-1"], PREVIOUS, AT).rollout.phase == P.ROLLING_BACK  # type: ignore[union-attr]


def test_an_in_place_batch_says_so_and_bakes_without_registering() -> None:
    sent = t.wave_sent(RECORDS["IN_PROGRESS/BAKING"], AT, in_place=True)
    assert sent.rollout == PLAN.model_copy(update={"wave": 2, "in_place": True})
    assert sent.history[-1].action == "in-place"
    assert "not deregistered" in sent.history[-1].detail
    assert t.wave_passed(sent, "2 succeeded", AT).rollout.phase == P.BAKING  # type: ignore[union-attr]
