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
    **{s.value: deployment(s, [PASSED], PLAN) for s in (S.RETRYING, S.SUCCEEDED, S.FAILED, S.CANCELLED,
                                                        S.ROLLED_BACK)},
}
TRANSITIONS: dict[str, Callable[[Deployment], Deployment]] = {
    "wave_sent": lambda d: t.wave_sent(d, AT, PLAN if d.rollout is None else None),
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
    ("IN_PROGRESS/STOPPING", "rollback_sent"): "IN_PROGRESS/ROLLING_BACK",
    ("IN_PROGRESS/STOPPING", "rolled_back"): "ROLLED_BACK",
    ("IN_PROGRESS/ROLLING_BACK", "rolled_back"): "ROLLED_BACK",
    ("IN_PROGRESS/BAKING (last)", "succeeded"): "SUCCEEDED",
    ("IN_PROGRESS", "succeeded"): "SUCCEEDED",
    ("IN_PROGRESS", "retry_scheduled"): "RETRYING",
    **{(state, "progress_recorded"): state for state in ("IN_PROGRESS", "IN_PROGRESS/WAVE", "IN_PROGRESS/STOPPING",
                                                         "IN_PROGRESS/ROLLING_BACK")},
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
        assert raised.value == IllegalTransition("dep-1", state_of(record), event)


def test_docs_architecture_tables_the_rollout_moves() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    table = docs[docs.index("A rollout in waves"):docs.index("## Locks, retries")]
    rollout_events = {"wave_sent", "wave_passed", "rollout_halted", "rollback_sent", "rolled_back"}
    expected = {(name.removesuffix(" (last)"), event): to for (name, event), to in LEGAL.items()
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
