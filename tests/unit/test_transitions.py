"""The deployment's state machine: every transition's result, and every illegal (state, event) pair's error."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from chalicelib.domain import transitions as t
from chalicelib.domain.deployment import (
    Attempt,
    CodeDeployRecord,
    Decision,
    Deployment,
    DeploymentStatus,
    InstanceResult,
    Revision,
    Tally,
)
from chalicelib.domain.errors import IllegalTransition
from chalicelib.domain.progress import MAX_STORED_TAILS
from chalicelib.domain.retry import Retry
from chalicelib.domain.spec import TargetSpec

from .conftest import EXAMPLE_SPEC

T0 = datetime(2024, 9, 12, 10, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=5)
S = DeploymentStatus
SPEC = TargetSpec.model_validate({k: v for k, v in EXAMPLE_SPEC.items() if k != "image"})
CREATED = Decision(at=T0, action="created", detail="web@sha256:aa by alice", cause="api")


def deployment(status: DeploymentStatus = S.IN_PROGRESS, attempts: list[Attempt] | None = None,
               digest: str | None = "sha256:" + "a" * 64) -> Deployment:
    return Deployment(deployment_id="dep-1", target="web-prod", spec=SPEC,
                      revision=Revision(image="registry/web:1", digest=digest), trigger="api", caller="alice",
                      status=status, attempts=attempts or [], history=[CREATED], created_at=T0, updated_at=T0,
                      version=3)


def out(**changes: Any) -> Attempt:
    """Attempt 1, sent at T0 to two instances, no command id recorded yet."""
    return Attempt(**{"number": 1, "started_at": T0, "expected_instances": ["i-1", "i-2"], "sends": 1,
                      "sent_at": T0, **changes})


ENDED = out(command_id="c-1", ended_at=T0, outcome="boom")
# A record as each status finds it: PENDING has no attempt yet; IN_PROGRESS has one out; the others have one ended.
RECORDS = {S.PENDING: deployment(S.PENDING), S.IN_PROGRESS: deployment(S.IN_PROGRESS, [out()]),
           **{s: deployment(s, [ENDED]) for s in (S.RETRYING, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.ROLLED_BACK)}}
RESULT = InstanceResult(instance_id="i-1", status="Success", response_code=0, digest="sha256:bb")
RETRY = Retry(attempt=2, at=AT + timedelta(seconds=30), delay_seconds=30, remediate_first=False, reason="transient")

TRANSITIONS: dict[str, Callable[[Deployment], Deployment]] = {
    "attempt_started": lambda d: t.attempt_started(d, ["i-1"], AT),
    "command_sent": lambda d: t.command_sent(d, "c-1", "api", AT),
    "send_unanswered": lambda d: t.send_unanswered(d, "timed out", 120, "api", AT),
    "sent_again": lambda d: t.sent_again(d, AT),
    "progress_recorded": lambda d: t.progress_recorded(d, Tally(total=2, pending=2), AT),
    "results_read": lambda d: t.results_read(d, {"i-1": RESULT}, Tally(total=1, succeeded=1)),
    "still_running": lambda d: t.still_running(d, AT),
    "retry_scheduled": lambda d: t.retry_scheduled(d, "exit 1", RETRY, "sched-2", "attempt 1 failed", AT),
    "succeeded": lambda d: t.succeeded(d, "2 of 2 succeeded", {"sha256:bb"}, AT),
    "failed": lambda d: t.failed(d, "no running instance", AT),
    "gave_up": lambda d: t.gave_up(d, "exit 1 Gave up: enough.", "enough", "attempt 1 failed", AT),
    "abandoned": lambda d: t.abandoned(d, AT),
    "cancelled": lambda d: t.cancelled(d, "cancelled by bob", AT),
    "noted": lambda d: t.noted(d, [("reason", "hotfix")], "api", AT),
}
OPEN = (S.PENDING, S.IN_PROGRESS, S.RETRYING)
# The legal moves: (from, event) -> to. Every other pair raises IllegalTransition.
LEGAL: dict[tuple[DeploymentStatus, str], DeploymentStatus] = {
    (S.PENDING, "attempt_started"): S.IN_PROGRESS,
    (S.RETRYING, "attempt_started"): S.IN_PROGRESS,
    **{(S.IN_PROGRESS, event): S.IN_PROGRESS for event in ("command_sent", "send_unanswered", "sent_again",
                                                         "progress_recorded", "results_read", "still_running")},
    (S.IN_PROGRESS, "retry_scheduled"): S.RETRYING,
    (S.IN_PROGRESS, "succeeded"): S.SUCCEEDED,
    **{(s, "failed"): S.FAILED for s in OPEN},
    **{(s, "gave_up"): S.FAILED for s in OPEN},
    (S.PENDING, "abandoned"): S.FAILED,
    **{(s, "cancelled"): S.CANCELLED for s in OPEN},
    **{(s, "noted"): s for s in S},
}


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("event", list(TRANSITIONS))
def test_every_state_and_event(status: DeploymentStatus, event: str) -> None:
    record = RECORDS[status]
    if (status, event) in LEGAL:
        assert TRANSITIONS[event](record).status == LEGAL[(status, event)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            TRANSITIONS[event](record)
        assert raised.value == IllegalTransition("dep-1", status.value, event)




# each legal move's whole result ------------------------------------------------------------------------------------
def test_attempt_started_claims_the_next_attempt_before_sending() -> None:
    assert t.attempt_started(RECORDS[S.RETRYING], ["i-1"], AT) == deployment(S.IN_PROGRESS, [
        ENDED, Attempt(number=2, started_at=AT, expected_instances=["i-1"], sends=1, sent_at=AT)]).model_copy(
        update={"updated_at": AT})


def test_command_sent_records_the_command_and_a_decision() -> None:
    assert t.command_sent(RECORDS[S.IN_PROGRESS], "c-9", "api", AT) == deployment(
        S.IN_PROGRESS, [out(command_id="c-9")]).model_copy(update={"updated_at": AT, "history": [
            CREATED, Decision(at=AT, action="dispatched", detail="attempt 1: SSM command c-9 to 2 instances",
                              cause="api")]})


def test_send_unanswered_notes_it_and_changes_nothing_else() -> None:
    assert t.send_unanswered(RECORDS[S.IN_PROGRESS], "timed out", 120, "api", AT) == RECORDS[S.IN_PROGRESS].model_copy(
        update={"updated_at": AT, "history": [CREATED, Decision(
            at=AT, action="send-unanswered", cause="api",
            detail="attempt 1: timed out. No command carries its comment yet: it is looked for on each refresh, and "
                   "sent again only if none appears within 120 s")]})


def test_sent_again_counts_a_new_try() -> None:
    assert t.sent_again(RECORDS[S.IN_PROGRESS], AT) == deployment(
        S.IN_PROGRESS, [out(sends=2, sent_at=AT)]).model_copy(update={"updated_at": AT})


def test_a_record_from_before_sends_were_counted_is_sent_as_its_second_try() -> None:
    assert t.sent_again(deployment(S.IN_PROGRESS, [out(sends=0, sent_at=None)]), AT).attempts == [
        out(sends=2, sent_at=AT)]


def test_an_attempt_whose_command_is_known_is_not_sent_again() -> None:
    with pytest.raises(IllegalTransition) as raised:
        t.sent_again(deployment(S.IN_PROGRESS, [out(command_id="c-1")]), AT)
    assert raised.value == IllegalTransition("dep-1", "IN_PROGRESS", "sent_again")


def test_progress_recorded_keeps_the_tally() -> None:
    assert t.progress_recorded(RECORDS[S.IN_PROGRESS], Tally(total=2, pending=2), AT) == deployment(
        S.IN_PROGRESS, [out(tally=Tally(total=2, pending=2))]).model_copy(update={"updated_at": AT})


def test_results_read_keeps_every_result_until_still_running_bounds_them() -> None:
    many = {f"i-{n:03d}": InstanceResult(instance_id=f"i-{n:03d}", status="Failed", response_code=1,
                                         output_tail="x") for n in range(MAX_STORED_TAILS + 5)}
    read = t.results_read(RECORDS[S.IN_PROGRESS], many, Tally(total=len(many), failed=len(many)))
    assert read == deployment(S.IN_PROGRESS, [out(instances=many, tally=Tally(total=len(many), failed=len(many)))])
    kept = t.still_running(read, AT)
    assert kept == read.model_copy(update={"updated_at": AT, "attempts": [t.bounded(read.attempts[-1])]})
    assert sum(1 for r in kept.attempts[-1].instances.values() if r.output_tail) == MAX_STORED_TAILS


def test_succeeded_ends_the_attempt_and_pins_the_one_digest_reported() -> None:
    started = deployment(S.IN_PROGRESS, [out(command_id="c-1")], digest=None)
    assert t.succeeded(started, "2 of 2 succeeded", {"sha256:bb"}, AT) == deployment(
        S.SUCCEEDED, [out(command_id="c-1", ended_at=AT, outcome="succeeded")], digest="sha256:bb").model_copy(
        update={"updated_at": AT, "message": "2 of 2 succeeded", "history": [
            CREATED, Decision(at=AT, action="succeeded", detail="2 of 2 succeeded")]})


def test_succeeded_leaves_a_pinned_digest_and_an_ambiguous_one_alone() -> None:
    pinned = deployment(S.IN_PROGRESS, [out()])
    assert t.succeeded(pinned, "ok", {"sha256:bb"}, AT).revision == pinned.revision
    unpinned = deployment(S.IN_PROGRESS, [out()], digest=None)
    assert t.succeeded(unpinned, "ok", {"sha256:bb", "sha256:cc"}, AT).revision == unpinned.revision


def test_failed_before_any_attempt() -> None:
    assert t.failed(RECORDS[S.PENDING], "no running instance", AT) == deployment(S.FAILED).model_copy(update={
        "updated_at": AT, "message": "no running instance",
        "history": [CREATED, Decision(at=AT, action="failed", detail="no running instance")]})


def test_gave_up_ends_the_attempt_with_its_reason_in_the_history() -> None:
    assert t.gave_up(RECORDS[S.IN_PROGRESS], "exit 1 Gave up: enough.", "enough", "attempt 1 failed", AT) == deployment(
        S.FAILED, [out(ended_at=AT, outcome="exit 1 Gave up: enough.")]).model_copy(update={
            "updated_at": AT, "message": "exit 1 Gave up: enough.", "history": [
                CREATED, Decision(at=AT, action="gave-up", detail="enough", cause="attempt 1 failed"),
                Decision(at=AT, action="failed", detail="exit 1 Gave up: enough.")]})


def test_abandoned() -> None:
    assert t.abandoned(RECORDS[S.PENDING], AT) == deployment(S.FAILED).model_copy(update={
        "updated_at": AT, "message": t.ABANDONED, "history": [CREATED, Decision(at=AT, action="failed",
                                                                                 detail=t.ABANDONED)]})


def test_a_pending_deployment_with_an_attempt_is_not_abandoned() -> None:
    with pytest.raises(IllegalTransition) as raised:
        t.abandoned(deployment(S.PENDING, [out()]), AT)
    assert raised.value == IllegalTransition("dep-1", "PENDING", "abandoned")


def test_retry_scheduled_ends_the_attempt_and_keeps_the_deployment_open() -> None:
    assert t.retry_scheduled(RECORDS[S.IN_PROGRESS], "exit 1", RETRY, "sched-2", "attempt 1 failed", AT) == deployment(
        S.RETRYING, [out(ended_at=AT, outcome="exit 1")]).model_copy(update={
            "updated_at": AT, "message": "attempt 1 failed; attempt 2 scheduled at 10:05:30Z", "history": [
                CREATED, Decision(at=AT, action="retry-scheduled", cause="attempt 1 failed",
                                  detail="attempt 2 at 2024-09-12T10:05:30+00:00 (in 30s, schedule sched-2): "
                                         "transient")]})


def test_cancelled_ends_an_attempt_still_out_and_leaves_an_ended_one() -> None:
    history = [CREATED, Decision(at=AT, action="cancelled", detail="cancelled by bob", cause="api")]
    assert t.cancelled(RECORDS[S.IN_PROGRESS], "cancelled by bob", AT) == deployment(
        S.CANCELLED, [out(ended_at=AT, outcome="cancelled by bob")]).model_copy(
        update={"updated_at": AT, "message": "cancelled by bob", "history": history})
    assert t.cancelled(RECORDS[S.RETRYING], "cancelled by bob", AT) == deployment(S.CANCELLED, [ENDED]).model_copy(
        update={"updated_at": AT, "message": "cancelled by bob", "history": history})


def test_noted_adds_to_the_history_only() -> None:
    assert t.noted(RECORDS[S.FAILED], [("breaker-reset", "by bob"), ("reason", "x" * 1200)], "api", AT) == \
        RECORDS[S.FAILED].model_copy(update={"history": [
            CREATED, Decision(at=AT, action="breaker-reset", detail="by bob", cause="api"),
            Decision(at=AT, action="reason", detail="x" * 1000, cause="api")]})


def test_a_transition_validates_the_record_it_returns() -> None:
    with pytest.raises(ValidationError):
        t.results_read(RECORDS[S.IN_PROGRESS], cast(Any, {"i-1": "not a result"}), Tally())


# the CodeDeploy record ----------------------------------------------------------------------------------------------
P = t.CodeDeployPhase
CD = CodeDeployRecord(deployment_id="d-1", application="app", group="grp", target="web-prod", lineage="d-1")
PHASES = {P.RECORDING: CD, P.DECIDED: CD.model_copy(update={"decided": True}),
          P.CREATING: CD.model_copy(update={"decided": True, "retried_as": "pending"}),
          P.RETRIED: CD.model_copy(update={"decided": True, "retried_as": "d-2"})}
CD_TRANSITIONS: dict[str, Callable[[CodeDeployRecord], CodeDeployRecord]] = {
    "lineage_found": lambda r: t.lineage_found(r, "d-0", 2),
    "decision_claimed": t.decision_claimed,
    "retry_scheduled": lambda r: t.codedeploy_retry_scheduled(r, ["c-1"], "attempt 2", "FAILURE", AT),
    "gave_up": lambda r: t.codedeploy_gave_up(r, "enough", "FAILURE", AT),
    "retry_claimed": t.retry_claimed,
    "retry_unanswered": lambda r: t.retry_unanswered(r, "timed out", "schedule", AT),
    "retried": lambda r: t.retried(r, "d-3", "schedule", AT),
}
CD_LEGAL: dict[tuple[t.CodeDeployPhase, str], t.CodeDeployPhase] = {
    **{(p, "lineage_found"): p for p in P},
    (P.RECORDING, "decision_claimed"): P.DECIDED,
    (P.DECIDED, "retry_scheduled"): P.DECIDED,
    **{(p, "gave_up"): p for p in (P.RECORDING, P.DECIDED, P.CREATING)},
    (P.RECORDING, "retry_claimed"): P.CREATING,
    (P.DECIDED, "retry_claimed"): P.CREATING,
    (P.CREATING, "retry_unanswered"): P.CREATING,
    (P.CREATING, "retried"): P.RETRIED,
}


@pytest.mark.parametrize("phase", list(P))
@pytest.mark.parametrize("event", list(CD_TRANSITIONS))
def test_every_codedeploy_phase_and_event(phase: t.CodeDeployPhase, event: str) -> None:
    record = PHASES[phase]
    assert t.codedeploy_phase(record) == phase
    if (phase, event) in CD_LEGAL:
        assert t.codedeploy_phase(CD_TRANSITIONS[event](record)) == CD_LEGAL[(phase, event)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            CD_TRANSITIONS[event](record)
        assert raised.value == IllegalTransition("d-1", phase.value, event)


def test_codedeploy_transitions_results() -> None:
    decided = PHASES[P.DECIDED]
    assert t.lineage_found(CD, "d-0", 2) == CD.model_copy(update={"lineage": "d-0", "attempt": 2})
    assert t.decision_claimed(CD) == decided
    assert t.codedeploy_retry_scheduled(decided, ["c-1"], "attempt 2", "FAILURE", AT) == decided.model_copy(update={
        "remediation_commands": ["c-1"],
        "history": [Decision(at=AT, action="retry-scheduled", detail="attempt 2", cause="FAILURE")]})
    assert t.codedeploy_gave_up(decided, "enough", "FAILURE", AT) == decided.model_copy(update={
        "history": [Decision(at=AT, action="gave-up", detail="enough", cause="FAILURE")]})
    assert t.retry_claimed(decided) == PHASES[P.CREATING]
    assert t.retry_unanswered(PHASES[P.CREATING], "timed out", "schedule", AT) == PHASES[P.CREATING].model_copy(
        update={"history": [Decision(at=AT, action="retry-unanswered", detail="timed out", cause="schedule")]})
    assert t.retried(PHASES[P.CREATING], "d-3", "schedule", AT) == decided.model_copy(update={
        "retried_as": "d-3", "history": [Decision(at=AT, action="retried", detail="new deployment d-3",
                                                  cause="schedule")]})


def documented_moves(table: str) -> dict[tuple[str, str], str]:
    """(from, transition) -> to, from a table in docs/architecture.md ("(same)": the state does not change)."""
    moves = {}
    for row in table.splitlines():
        if row.startswith("| `"):
            event, sources, to = (cell.strip() for cell in row.strip("|").split("|")[:3])
            for source in sources.split(", "):
                moves[(source, event.strip("`"))] = source if to == "(same)" else to
    return moves


def test_docs_architecture_tables_the_legal_moves() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    section = docs[docs.index("## The deployment's states"):docs.index("## Locks, retries")]
    deployments, codedeploy = section.split("A CodeDeploy record (`CodeDeployRecord`)")
    codedeploy = codedeploy.split("A rollout in waves")[0]
    assert documented_moves(deployments) == {(s.value, event): to.value for (s, event), to in LEGAL.items()}
    assert documented_moves(codedeploy) == {(p.value, event): to.value for (p, event), to in CD_LEGAL.items()}
