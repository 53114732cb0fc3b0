"""No drift, on fakes: a success within max_errors lists who it left behind, and a sync sends to those alone."""

from __future__ import annotations

import pytest

from chalicelib.domain.deployment import DeploymentStatus
from chalicelib.domain.errors import BreakerOpen, NothingToSync, TargetBusy
from chalicelib.domain.spec import TargetSpec
from localaws import InstanceOutcome
from tests.service.conftest import REGISTRY, TAGS, Bench, spec

V1 = f"{REGISTRY}/web:v1"
FAILED = InstanceOutcome(status="Failed", response_code=30, stderr="pull failed")


@pytest.fixture
def ops(bench: Bench) -> Bench:
    bench.fleet.launch(3, TAGS)
    bench.operations.register_target(TargetSpec.model_validate(spec(rollout={"max_errors": "1"})), "alice")
    return bench


def settle(bench: Bench, deployment_id: str) -> DeploymentStatus:
    for _ in range(10):
        followed = bench.operations.deployment(deployment_id)
        if followed.deployment.status.is_final:
            return followed.deployment.status
        bench.clock.advance(seconds=10)
    raise AssertionError(f"{deployment_id} did not finish")


def one_left_behind(ops: Bench) -> tuple[list[str], str]:
    ids = ops.fleet.running()
    ops.ssm.set_outcome(ids[1], FAILED)
    first = ops.operations.redeploy("web-prod", V1, None, False, "alice").deployment_id
    assert settle(ops, first) == DeploymentStatus.SUCCEEDED
    return ids, first


def test_a_success_within_max_errors_lists_the_instance_left_behind(ops: Bench) -> None:
    ids, first = one_left_behind(ops)

    deployment = ops.store.get_deployment(first)
    assert deployment.left_behind == [ids[1]]
    assert f"1 instances left behind, not on this revision: {ids[1]}" in deployment.message
    record = ops.store.get_target("web-prod")
    assert record is not None and record.current_revision is not None
    digest = record.current_revision.digest
    assert {i: state.digest for i, state in record.fleet.instances.items()} == {ids[0]: digest, ids[1]: None,
                                                                                 ids[2]: digest}


def test_a_sync_sends_to_the_instance_behind_alone_and_keeps_the_revision(ops: Bench) -> None:
    ids, first = one_left_behind(ops)
    ops.ssm.set_outcome(ids[1], InstanceOutcome())
    before = ops.store.get_target("web-prod")

    synced = ops.operations.sync("web-prod", "drift", "arn:aws:iam::123456789012:user/bob")

    assert (synced.remaining, synced.not_running) == (0, [])
    deployment = synced.deployment
    assert deployment.trigger == "sync" and deployment.caller == "arn:aws:iam::123456789012:user/bob"
    assert deployment.spec.instances.ids == [ids[1]] and deployment.attempts[0].expected_instances == [ids[1]]
    assert settle(ops, deployment.deployment_id) == DeploymentStatus.SUCCEEDED
    after = ops.store.get_target("web-prod")
    assert before is not None and after is not None
    assert after.current_revision == before.current_revision and after.last_deployment_id == first
    assert {state.digest for state in after.fleet.instances.values()} == {after.current_revision.digest}
    assert ops.store.get_deployment(deployment.deployment_id).left_behind == []
    with pytest.raises(NothingToSync, match="no running instance is behind"):
        ops.operations.sync("web-prod", None, "bob")


def test_a_sync_is_refused_without_a_revision_while_busy_or_with_the_breaker_open(ops: Bench) -> None:
    with pytest.raises(NothingToSync, match="no current revision"):
        ops.operations.sync("web-prod", None, "bob")
    ids, _ = one_left_behind(ops)
    ops.ssm.set_outcome(ids[0], InstanceOutcome(polls_before_done=100))
    running = ops.operations.redeploy("web-prod", None, None, False, "alice").deployment_id
    with pytest.raises(TargetBusy, match=running):
        ops.operations.sync("web-prod", None, "bob")
    ops.operations.cancel(running, "alice")
    ops.store.record_failure("web-prod", int(ops.clock().timestamp()), keep_after=0, open_breaker=True)
    with pytest.raises(BreakerOpen):
        ops.operations.sync("web-prod", None, "bob")


def test_an_instance_behind_that_is_not_running_is_not_sent_to(ops: Bench) -> None:
    ids, _ = one_left_behind(ops)
    ops.fleet.stop(ids[1])
    with pytest.raises(NothingToSync, match=f"1 behind are not running: {ids[1]}"):
        ops.operations.sync("web-prod", None, "bob")


def test_more_than_fifty_behind_sends_the_first_fifty_and_says_how_many_remain(bench: Bench) -> None:
    ids = bench.fleet.launch(60, TAGS)
    bench.operations.register_target(TargetSpec.model_validate(spec(rollout={"max_errors": "100%"})), "alice")
    for instance_id in ids[1:]:
        bench.ssm.set_outcome(instance_id, FAILED)
    first = bench.operations.redeploy("web-prod", V1, None, False, "alice").deployment_id
    assert settle(bench, first) == DeploymentStatus.SUCCEEDED
    assert bench.store.get_deployment(first).left_behind == ids[1:]

    synced = bench.operations.sync("web-prod", None, "bob")

    assert synced.deployment.spec.instances.ids == ids[1:51] and synced.remaining == 9
