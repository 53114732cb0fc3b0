"""Operations (the REST API's use cases) on fakes: redeploy, follow, roll back, cancel, and the lock's expiry."""

from __future__ import annotations

import pytest

from chalicelib.domain.deployment import DeploymentStatus
from chalicelib.domain.errors import BreakerOpen, DeploymentFinished, InvalidRequest, NothingToRollBack, TargetBusy
from chalicelib.domain.spec import TargetSpec
from localaws import InstanceOutcome
from tests.service.conftest import REGISTRY, TAGS, Bench, spec

V1, V2 = f"{REGISTRY}/web:v1", f"{REGISTRY}/web:v2"


@pytest.fixture
def ops(bench: Bench) -> Bench:
    bench.fleet.launch(2, TAGS)
    bench.registry.push("web", "v2")
    bench.operations.register_target(TargetSpec.model_validate(spec()), "alice")
    return bench


def deploy(bench: Bench, image: str | None = V1) -> str:
    return bench.operations.redeploy("web-prod", image, None, False, "alice").deployment_id


def settle(bench: Bench, deployment_id: str) -> DeploymentStatus:
    for _ in range(10):
        followed = bench.operations.deployment(deployment_id)
        if followed.deployment.status.is_final:
            return followed.deployment.status
        bench.clock.advance(seconds=10)
    raise AssertionError(f"{deployment_id} did not finish")


def test_a_redeploy_runs_and_the_target_shows_it(ops: Bench) -> None:
    ops.ssm.set_default_outcome(InstanceOutcome(polls_before_done=1))
    deployment_id = deploy(ops)
    state = ops.operations.target("web-prod")
    assert state.lock is not None and state.lock.deployment_id == deployment_id
    assert state.last_deployment is not None and state.last_deployment.deployment_id == deployment_id

    assert settle(ops, deployment_id) == DeploymentStatus.SUCCEEDED
    state = ops.operations.target("web-prod")
    assert state.lock is None and state.record.current_revision is not None
    assert state.record.current_revision.digest == ops.registry.digests[("web", "v1")]


def test_a_busy_target_refuses_a_second_deployment(ops: Bench) -> None:
    ops.ssm.set_default_outcome(InstanceOutcome(polls_before_done=100))
    running = deploy(ops)
    with pytest.raises(TargetBusy, match=running):
        deploy(ops, V2)


def test_a_rollback_deploys_the_previous_good_revision_by_digest(ops: Bench) -> None:
    assert settle(ops, deploy(ops)) == DeploymentStatus.SUCCEEDED
    assert settle(ops, deploy(ops, V2)) == DeploymentStatus.SUCCEEDED

    back = ops.operations.rollback("web-prod", None, "v2 is bad", False, "bob")

    assert back.revision.digest == ops.registry.digests[("web", "v1")] and back.trigger == "rollback"
    assert back.history[-1].detail == "v2 is bad"


def test_nothing_to_roll_back_to(ops: Bench) -> None:
    assert settle(ops, deploy(ops)) == DeploymentStatus.SUCCEEDED
    with pytest.raises(NothingToRollBack):
        ops.operations.rollback("web-prod", None, None, False, "bob")
    with pytest.raises(InvalidRequest, match="no deployment 'd-9'"):
        ops.operations.rollback("web-prod", "d-9", None, False, "bob")


def test_a_cancel_stops_the_command_and_frees_the_target(ops: Bench) -> None:
    ops.ssm.set_default_outcome(InstanceOutcome(polls_before_done=100))
    deployment_id = deploy(ops)

    cancelled = ops.operations.cancel(deployment_id, "bob", "wrong image")

    assert cancelled.status == DeploymentStatus.CANCELLED and cancelled.message == "cancelled by bob: wrong image"
    [run] = ops.ssm.runs.values()
    assert run.status() == ("Cancelled", "Cancelled")
    assert ops.store.get_lock("web-prod") is None
    with pytest.raises(DeploymentFinished):
        ops.operations.cancel(deployment_id, "bob")


def test_a_rollout_longer_than_its_lock_keeps_the_target(ops: Bench) -> None:
    """The lock lasts the command's timeout plus slack; a slow rollout polled past half of that pushes it out, so a
    second deployment still finds the target busy."""
    ops.ssm.set_default_outcome(InstanceOutcome(polls_before_done=100))
    running = deploy(ops)
    lock = ops.store.get_lock("web-prod")
    ops.operations.deployment(running)
    assert ops.store.get_lock("web-prod") == lock                      # early in the rollout: no write for the lock

    ops.clock.advance(hours=1)
    assert ops.operations.deployment(running).deployment.status == DeploymentStatus.IN_PROGRESS
    extended = ops.store.get_lock("web-prod")
    assert lock is not None and extended is not None and extended.deployment_id == running
    assert extended.expires_at - lock.expires_at >= 55 * 60
    with pytest.raises(TargetBusy, match=running):
        deploy(ops, V2)


def test_an_unpolled_rollout_past_its_lock_keeps_the_target_while_ssm_runs_it(ops: Bench) -> None:
    """Nobody polls a REST deployment, so nothing extends its lock; the command still runs hours later. A second
    deployment must not put a second command on the target: SSM is asked before an expired lock is taken over."""
    ops.ssm.set_default_outcome(InstanceOutcome(polls_before_done=100))
    running = deploy(ops)

    later = ops.clock.advance(hours=3)
    with pytest.raises(TargetBusy, match=running):
        deploy(ops, V2)

    lock = ops.store.get_lock("web-prod")
    assert lock is not None and lock.deployment_id == running and lock.expires_at > later.timestamp()
    assert len(ops.ssm.runs) == 1


def test_an_expired_lock_whose_command_is_over_is_taken_over(ops: Bench) -> None:
    """The same, once SSM says the command is over: the target is free, and the old deployment, when it is looked
    at, settles without turning the target back to its revision."""
    first = deploy(ops)                 # its command is over at once, but nobody looks until the lock has expired
    ops.clock.advance(hours=3)

    second = deploy(ops, V2)

    assert settle(ops, second) == DeploymentStatus.SUCCEEDED
    assert settle(ops, first) == DeploymentStatus.SUCCEEDED
    assert len(ops.ssm.runs) == 2
    record = ops.store.get_target("web-prod")
    assert record is not None and record.current_revision is not None
    assert record.current_revision.digest == ops.registry.digests[("web", "v2")]


def test_an_open_breaker_refuses_until_it_is_reset(ops: Bench) -> None:
    now = int(ops.clock().timestamp())
    ops.store.record_failure("web-prod", now, keep_after=0, open_breaker=True)
    with pytest.raises(BreakerOpen):
        deploy(ops)
    deployment = ops.operations.redeploy("web-prod", V1, None, True, "alice")
    assert [d.action for d in deployment.history][-1] == "breaker-reset"
    record = ops.store.get_target("web-prod")
    assert record is not None and record.breaker_open_since is None
