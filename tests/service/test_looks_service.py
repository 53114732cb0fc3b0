"""services/looks.py on the fake Scheduler (held to the adapter by tests/contracts/test_scheduler_contract.py): which
refreshes schedule a look, under which name, and what a look accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.deployment import Deployment, DeploymentStatus, Revision
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.retry_payload import LookAgain
from chalicelib.domain.rollout import Rollout, RolloutPhase
from chalicelib.domain.spec import TargetSpec
from chalicelib.services.looks import LookNotDue, Looks
from tests.fakes.clock import Clock
from tests.fakes.scheduler import FakeRetryScheduler

T0 = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
SPEC = TargetSpec.model_validate({"target": "web", "instances": {"tags": {"app": "web"}}, "container": {"name": "web"},
                                  "rollout": {"canary": {"instances": 1, "bake_seconds": 300}}})
BAKING = Rollout(waves=[["i-1"], ["i-2"]], phase=RolloutPhase.BAKING, baking_since=T0)
END = int((T0 + timedelta(seconds=300)).timestamp())


def deployment(job_id: str | None = None, rollout: Rollout | None = BAKING,
               status: DeploymentStatus = DeploymentStatus.IN_PROGRESS) -> Deployment:
    return Deployment(deployment_id="d-1", target="web", spec=SPEC, revision=Revision(image="web:2"), trigger="api",
                      caller="alice", job_id=job_id, status=status, created_at=T0, updated_at=T0, rollout=rollout)


@pytest.fixture
def scheduler() -> FakeRetryScheduler:
    return FakeRetryScheduler()


def test_a_rest_rollout_baking_gets_one_look_at_the_bakes_end(scheduler: FakeRetryScheduler) -> None:
    looks = Looks(scheduler, Clock(T0))
    looks.after_refresh(deployment())
    looks.after_refresh(deployment())                       # a second refresh: the same name, already scheduled
    look = LookAgain(deployment_id="d-1", wave=1, phase="BAKING", at=END)
    assert list(scheduler.schedules) == [look.schedule_name()]
    assert scheduler.schedules[look.schedule_name()].payload == look.wire()
    assert scheduler.schedules[look.schedule_name()].at == T0 + timedelta(seconds=300)


@pytest.mark.parametrize("waiting", [
    deployment(job_id="0f2c6f5e-1d2b-4c2a-9a4e-3f1e2d3c4b5a"),            # a pipeline's continuations refresh it
    deployment(rollout=None),                                              # not in waves
    deployment(rollout=BAKING.model_copy(update={"phase": RolloutPhase.WAVE})),   # SSM's event comes
    deployment(status=DeploymentStatus.SUCCEEDED),
])
def test_no_look_where_something_else_refreshes_or_nothing_waits(scheduler: FakeRetryScheduler,
                                                                 waiting: Deployment) -> None:
    Looks(scheduler, Clock(T0)).after_refresh(waiting)
    assert scheduler.schedules == {}


def test_a_look_that_came_early_schedules_the_next_under_another_name(scheduler: FakeRetryScheduler) -> None:
    firing = LookAgain(deployment_id="d-1", wave=1, phase="BAKING", at=END)
    Looks(scheduler, Clock(T0 + timedelta(seconds=299.5))).after_refresh(deployment(), firing)
    (name,) = scheduler.schedules
    assert name != firing.schedule_name() and scheduler.schedules[name].payload["at"] == END + 1


def test_a_failing_scheduler_or_none_fails_nothing(scheduler: FakeRetryScheduler,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    scheduler.fail_next(AwsCallFailed("Scheduler CreateSchedule failed: ThrottlingException"))
    Looks(scheduler, Clock(T0)).after_refresh(deployment())
    Looks(None, Clock(T0)).after_refresh(deployment())
    assert scheduler.schedules == {}
    assert [r.getMessage() for r in caplog.records] == [
        "could not schedule the next look at a waiting rollout; it advances on its next refresh",
        "no look scheduled: automatic retries are not configured, so this rollout advances only when it is "
        "refreshed (GET /deployments/{id}, berth ... --wait)"]


def test_a_look_accepts_only_the_wave_and_phase_it_was_scheduled_for() -> None:
    check = Looks.accept(LookAgain(deployment_id="d-1", wave=1, phase="BAKING", at=END))
    check(deployment())
    for elsewhere in (deployment(rollout=BAKING.model_copy(update={"wave": 2})),
                      deployment(rollout=BAKING.model_copy(update={"phase": RolloutPhase.STOPPING})),
                      deployment(status=DeploymentStatus.ROLLED_BACK), deployment(rollout=None)):
        with pytest.raises(LookNotDue):
            check(elsewhere)
