"""The release task as a state machine: every (state, event) pair, each legal move's whole result, and which
deployments run it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.domain import transitions as t
from chalicelib.domain.deployment import Attempt, Decision, Deployment, DeploymentStatus, Revision
from chalicelib.domain.errors import IllegalTransition
from chalicelib.domain.release import (
    ReleasePhase,
    ReleaseTask,
    failure_message,
    release_comment,
    release_due,
    release_send_number,
    released_before,
)
from chalicelib.domain.rollout import Rollout
from chalicelib.domain.spec import TargetSpec
from tests.unit.test_transitions import documented_moves

from .conftest import EXAMPLE_SPEC

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=5)
S, R = DeploymentStatus, ReleasePhase
MIGRATE = ["bin/rails", "db:migrate"]
SPEC = TargetSpec.model_validate({**{k: v for k, v in EXAMPLE_SPEC.items() if k != "image"},
                                  "release": {"command": MIGRATE, "timeout_seconds": 600}})
DIGEST = "sha256:" + "a" * 64
PLAN = Rollout(waves=[["i-1"], ["i-2"]])
CREATED = Decision(at=T0, action="created", detail="web@sha256:aa by alice", cause="pipeline")
CLAIMED = ReleaseTask(command=MIGRATE, instance_id="i-1", image=f"registry/web@{DIGEST}", run_id="release-dep-1",
                      started_at=T0, sends=1, sent_at=T0)


def deployment(status: DeploymentStatus = S.PENDING, release: ReleaseTask | None = None,
               attempts: list[Attempt] | None = None, trigger: str = "pipeline", deployment_id: str = "dep-1",
               digest: str = DIGEST) -> Deployment:
    return Deployment(deployment_id=deployment_id, target="web-prod", spec=SPEC,
                      revision=Revision(image="registry/web:1", digest=digest), trigger=trigger,  # type: ignore[arg-type]
                      caller="alice", status=status, attempts=attempts or [], history=[CREATED], created_at=T0,
                      updated_at=T0, version=3, release=release)


SENT = CLAIMED.model_copy(update={"command_id": "c-r"})
RECORDS: dict[str, Deployment] = {
    "PENDING": deployment(),
    "PENDING/SKIPPED": deployment(release=ReleaseTask(command=MIGRATE, phase=R.SKIPPED, ran_in="dep-0")),
    "IN_PROGRESS/RELEASING": deployment(S.IN_PROGRESS, CLAIMED),
    "IN_PROGRESS/RELEASING (sent)": deployment(S.IN_PROGRESS, SENT),
    "IN_PROGRESS/RELEASED": deployment(S.IN_PROGRESS, SENT.model_copy(update={"phase": R.RELEASED})),
    "IN_PROGRESS": deployment(S.IN_PROGRESS, SENT.model_copy(update={"phase": R.RELEASED}),
                              [Attempt(number=1, started_at=T0, expected_instances=["i-1"])]),
    **{s.value: deployment(s, SENT.model_copy(update={"phase": R.RELEASED})) for s in (
        S.RETRYING, S.SUCCEEDED, S.FAILED, S.CANCELLED)},
}
TRANSITIONS: dict[str, Callable[[Deployment], Deployment]] = {
    "release_started": lambda d: t.release_started(d, "i-1", "release-dep-1", AT),
    "release_skipped": lambda d: t.release_skipped(d, "dep-0", AT),
    "release_sent": lambda d: t.release_sent(d, "c-r", "pipeline", AT),
    "release_unanswered": lambda d: t.release_unanswered(d, "read timeout", "pipeline", AT),
    "release_sent_again": lambda d: t.release_sent_again(d, AT),
    "release_passed": lambda d: t.release_passed(d, "migrated", AT),
    "release_failed": lambda d: t.release_failed(d, "Failed", 1, "boom", AT),
    "attempt_started": lambda d: t.attempt_started(d, ["i-1", "i-2"], AT),
    "wave_sent": lambda d: t.wave_sent(d, AT, PLAN),
    "batch_draining": lambda d: t.batch_draining(d, AT, PLAN),
}
FIRST_WAVE = {(state, event): f"IN_PROGRESS/{phase}" for state in ("PENDING", "PENDING/SKIPPED", "IN_PROGRESS/RELEASED")
              for event, phase in (("wave_sent", "WAVE"), ("batch_draining", "DRAINING"))}
LEGAL: dict[tuple[str, str], str] = {
    ("PENDING", "release_started"): "IN_PROGRESS/RELEASING",
    ("PENDING", "release_skipped"): "PENDING/SKIPPED",
    ("IN_PROGRESS/RELEASING", "release_sent"): "IN_PROGRESS/RELEASING",
    ("IN_PROGRESS/RELEASING (sent)", "release_sent"): "IN_PROGRESS/RELEASING",
    ("IN_PROGRESS/RELEASING", "release_unanswered"): "IN_PROGRESS/RELEASING",
    ("IN_PROGRESS/RELEASING (sent)", "release_unanswered"): "IN_PROGRESS/RELEASING",
    ("IN_PROGRESS/RELEASING", "release_sent_again"): "IN_PROGRESS/RELEASING",
    ("IN_PROGRESS/RELEASING (sent)", "release_passed"): "IN_PROGRESS/RELEASED",
    ("IN_PROGRESS/RELEASING", "release_failed"): "FAILED",
    ("IN_PROGRESS/RELEASING (sent)", "release_failed"): "FAILED",
    ("PENDING", "attempt_started"): "IN_PROGRESS",
    ("PENDING/SKIPPED", "attempt_started"): "IN_PROGRESS",
    ("IN_PROGRESS/RELEASED", "attempt_started"): "IN_PROGRESS",
    ("RETRYING", "attempt_started"): "IN_PROGRESS",
    **FIRST_WAVE,       # a rollout in waves starts as an attempt does
}


def state_of(d: Deployment) -> str:
    if d.rollout is not None:
        return f"{d.status.value}/{d.rollout.phase.value}"
    if d.release is not None and d.status in (S.PENDING, S.IN_PROGRESS) and not d.attempts:
        return f"{d.status.value}/{d.release.phase.value}"
    return d.status.value


@pytest.mark.parametrize("name", list(RECORDS))
@pytest.mark.parametrize("event", list(TRANSITIONS))
def test_every_state_and_event(name: str, event: str) -> None:
    record = RECORDS[name]
    if (name, event) in LEGAL:
        assert state_of(TRANSITIONS[event](record)) == LEGAL[(name, event)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            TRANSITIONS[event](record)
        assert raised.value.event == event


def test_docs_architecture_tables_the_release_moves() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    table = docs[docs.index("## The release task"):]
    expected = {(name.split(" (")[0], event): to for (name, event), to in LEGAL.items()
                if (event.startswith("release_") or "/" in name) and (name, event) not in FIRST_WAVE}
    assert documented_moves(table) == expected


def test_the_task_is_claimed_before_it_is_sent_and_its_command_recorded() -> None:
    claimed = t.release_started(RECORDS["PENDING"], "i-1", "release-dep-1", AT)
    assert claimed.release == CLAIMED.model_copy(update={"started_at": AT, "sent_at": AT})
    assert claimed.status == S.IN_PROGRESS and claimed.attempts == []
    assert claimed.history[-1] == Decision(
        at=AT, action="release-started", detail=f"release task 'bin/rails db:migrate' on i-1 in registry/web@{DIGEST}")
    sent = t.release_sent(claimed, "c-r", "pipeline", AT)
    assert sent.release is not None and sent.release.command_id == "c-r"
    again = t.release_sent_again(claimed, AT)
    assert again.release is not None and again.release.sends == 2
    with pytest.raises(IllegalTransition):
        t.release_sent_again(sent, AT)          # its command is known: never sent again
    with pytest.raises(IllegalTransition):
        t.release_passed(claimed, "", AT)       # no command is known to have run


def test_a_failed_task_fails_the_deployment_with_its_output_tail() -> None:
    output = "".join(f"line {n}\n" for n in range(1000)) + "PG::UndefinedTable\n"
    failed = t.release_failed(RECORDS["IN_PROGRESS/RELEASING (sent)"], "Failed", 1, output, AT)
    assert failed.status == S.FAILED and failed.release is not None and failed.release.phase == R.FAILED
    assert failed.release.exit_code == 1 and failed.release.output_tail.endswith("PG::UndefinedTable\n")
    assert len(failed.release.output_tail) == 2003 and failed.release.output_tail.startswith("...")
    assert failed.message.startswith("release task 'bin/rails db:migrate' exited 1 on i-1; nothing was swapped.")
    assert failed.message.endswith("PG::UndefinedTable\n") and failed.history[-1].action == "failed"


def test_failure_messages_say_how_the_task_ended() -> None:
    assert failure_message(SENT, "TimedOut", 124, "") == (
        "release task 'bin/rails db:migrate' was stopped after its timeout (exit 124) on i-1; nothing was swapped. "
        "Output tail:\n(no output)")
    assert failure_message(SENT, "DeliveryTimedOut", None, "x").startswith(
        "release task 'bin/rails db:migrate' ended DeliveryTimedOut on i-1")


@pytest.mark.parametrize("trigger, due", [("pipeline", True), ("api", True), ("retry", True), ("rollback", False),
                                          ("sync", False), ("join", False)])
def test_only_a_deployment_of_a_new_revision_runs_the_task(trigger: str, due: bool) -> None:
    assert release_due(deployment(trigger=trigger)) is due


def test_the_task_is_due_once_and_only_with_a_release_in_the_spec() -> None:
    assert not release_due(RECORDS["IN_PROGRESS/RELEASING"])
    assert not release_due(RECORDS["PENDING/SKIPPED"])
    assert not release_due(deployment().model_copy(update={"spec": SPEC.model_copy(update={"release": None})}))


def earlier(deployment_id: str, phase: ReleasePhase | None, digest: str = DIGEST,
            command: list[str] = MIGRATE) -> Deployment:
    release = None if phase is None else SENT.model_copy(update={"phase": phase, "command": command})
    return deployment(S.SUCCEEDED, release, deployment_id=deployment_id, digest=digest)


OTHER = "sha256:" + "b" * 64


@pytest.mark.parametrize("history, ran_in", [
    ([], None),
    ([earlier("d-2", R.RELEASED)], "d-2"),
    ([earlier("d-3", None), earlier("d-2", R.RELEASED)], "d-2"),           # a rollback in between
    ([earlier("d-3", R.SKIPPED), earlier("d-2", R.RELEASED)], "d-2"),     # a skip in between
    ([earlier("d-2", R.FAILED)], None),
    ([earlier("d-2", R.RELEASED, digest=OTHER)], None),
    ([earlier("d-3", R.RELEASED, digest=OTHER), earlier("d-2", R.RELEASED)], None),   # A, B, then A again
    ([earlier("d-2", R.RELEASED, command=["bin/migrate"])], None),
])
def test_a_task_that_succeeded_for_the_digest_in_the_newest_release_is_not_run_again(
        history: list[Deployment], ran_in: str | None) -> None:
    assert released_before(MIGRATE, DIGEST, history, "dep-1") == ran_in
    assert released_before(MIGRATE, None, history, "dep-1") is None


def test_each_try_of_the_task_has_a_comment_of_its_own() -> None:
    assert release_comment("d-1") == "berth d-1 release" and release_comment("d-1", 3) == "berth d-1 release send 3"
    assert [release_send_number(c, "d-1") for c in ("berth d-1 release", "berth d-1 release send 3",
                                                     "berth d-1 attempt 1", "berth d-12 release")] == [1, 3, None, None]
