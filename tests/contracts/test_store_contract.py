"""DeploymentStore: the in-memory fake (tests/fakes/store.py) and the adapter on moto's DynamoDB answer alike, for
the methods the service tests use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Decision, Deployment, DeploymentStatus, Revision
from chalicelib.domain.errors import AwsCallFailed, Conflict, DeploymentNotFound, TargetNotFound
from chalicelib.domain.fleet import Fleet, InstanceState
from chalicelib.domain.freeze import Freeze
from chalicelib.domain.spec import TargetSpec
from chalicelib.domain.target import LatestStart, Lock
from tests.conftest import TABLE
from tests.fakes.store import FakeDeploymentStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = int(T0.timestamp())
SPEC = TargetSpec.model_validate({
    "target": "web", "instances": {"tags": {"app": "web"}}, "container": {"name": "web", "ports": ["80:80"]},
    "codedeploy": {"application": "web-app", "deployment_group": "web-prod"}})
V1 = Revision(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1", digest="sha256:" + "1" * 64)
V2 = Revision(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/web:2", digest="sha256:" + "2" * 64)


def deployment(deployment_id: str, at: datetime = T0, job_id: str | None = None) -> Deployment:
    return Deployment(deployment_id=deployment_id, target="web", spec=SPEC, revision=V1, trigger="api",
                      caller="alice", job_id=job_id, created_at=at, updated_at=at,
                      history=[Decision(at=at, action="created", detail="by alice", cause="api")])


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest) -> Iterator[DeploymentStore]:
    if request.param == "fake":
        yield FakeDeploymentStore()
    else:
        world: Any = request.getfixturevalue("aws")
        yield DeploymentStore(world.client("dynamodb"), TABLE)


def test_a_target_is_registered_and_found_by_its_codedeploy_group(store: DeploymentStore) -> None:
    assert store.get_target("web") is None
    store.put_target(SPEC, "alice")
    record = store.get_target("web")
    assert record is not None and (record.spec, record.current_revision, record.updated_by) == (SPEC, None, "alice")
    assert store.find_codedeploy_target("web-app", "web-prod") == record
    assert store.find_codedeploy_target("web-app", "other") is None


def test_failures_open_the_breaker_and_a_reset_closes_it(store: DeploymentStore) -> None:
    store.put_target(SPEC, "alice")
    store.record_failure("web", EPOCH - 100, keep_after=EPOCH - 200, open_breaker=False)
    store.record_failure("web", EPOCH, keep_after=EPOCH - 50, open_breaker=True)
    store.record_failure("web", EPOCH + 1, keep_after=EPOCH - 50, open_breaker=True)
    record = store.get_target("web")
    assert record is not None and (record.recent_failures, record.breaker_open_since) == ((EPOCH, EPOCH + 1), EPOCH)
    store.reset_breaker("web", "bob")
    record = store.get_target("web")
    assert record is not None and (record.recent_failures, record.breaker_open_since, record.updated_by) == (
        (), None, "bob")
    store.record_failure("nobody", EPOCH, keep_after=0, open_breaker=True)       # no target: nothing to remember
    with pytest.raises(AwsCallFailed, match="ConditionalCheckFailed"):
        store.reset_breaker("nobody", "bob")


def test_a_freeze_is_kept_on_the_target_replaced_and_lifted(store: DeploymentStore) -> None:
    store.put_target(SPEC, "alice")
    first = Freeze("release week", "arn:aws:iam::123456789012:user/bob", T0, T0 + timedelta(hours=2))
    store.freeze_target("web", first)
    record = store.get_target("web")
    assert record is not None and record.freeze == first and record.updated_by == "alice"
    second = Freeze("incident 42", "carol", T0 + timedelta(minutes=5))
    store.freeze_target("web", second)
    assert store.get_target("web").freeze == second  # type: ignore[union-attr]
    store.unfreeze_target("web")
    store.unfreeze_target("web")                                   # twice: nothing to lift is no error
    assert store.get_target("web").freeze is None  # type: ignore[union-attr]
    with pytest.raises(TargetNotFound):
        store.freeze_target("nobody", first)
    with pytest.raises(TargetNotFound):
        store.unfreeze_target("nobody")


def test_a_start_takes_the_target_records_the_deployment_and_claims_the_job(store: DeploymentStore) -> None:
    first = deployment("d-1", job_id="job-1")
    assert store.start_deployment(first, lock_ttl=600) is None
    assert store.get_lock("web") == Lock("d-1", "job-1", EPOCH, EPOCH + 600)
    assert store.latest_start("web") == LatestStart("d-1", EPOCH * 1_000_000)
    assert store.get_deployment("d-1") == first
    assert store.find_job("job-1") == "d-1"

    assert store.start_deployment(deployment("d-2"), lock_ttl=600) == Lock("d-1", "job-1", EPOCH, EPOCH + 600)
    with pytest.raises(DeploymentNotFound):
        store.get_deployment("d-2")
    store.release_lock("web", "d-1")
    with pytest.raises(Conflict):
        store.start_deployment(deployment("d-3", job_id="job-1"), lock_ttl=600)     # the job was claimed already
    assert store.get_lock("web") is None


def test_an_expired_lock_is_taken_over_only_as_it_was_read(store: DeploymentStore) -> None:
    store.start_deployment(deployment("d-1"), lock_ttl=60)
    expired = store.get_lock("web")
    assert expired is not None
    later = T0 + timedelta(hours=1)
    stale = Lock("d-1", None, EPOCH, EPOCH + 1)
    assert store.start_deployment(deployment("d-2", later), lock_ttl=60, replacing=stale) == expired
    assert store.start_deployment(deployment("d-2", later), lock_ttl=60, replacing=expired) is None
    assert store.get_lock("web") == Lock("d-2", None, EPOCH + 3600, EPOCH + 3660)


def test_a_deployment_holds_its_target_until_another_starts_on_it(store: DeploymentStore) -> None:
    store.start_deployment(deployment("d-1", job_id="job-1"), lock_ttl=60)
    assert store.hold_target("web", "d-1", None, EPOCH + 10, EPOCH + 900) is True
    assert store.get_lock("web") == Lock("d-1", "job-1", EPOCH, EPOCH + 900)
    store.release_lock("web", "d-1")
    assert store.hold_target("web", "d-1", "job-1", EPOCH + 20, EPOCH + 950) is True        # lapsed: taken back
    assert store.get_lock("web") == Lock("d-1", "job-1", EPOCH + 20, EPOCH + 950)
    store.release_lock("web", "d-1")
    store.start_deployment(deployment("d-2", T0 + timedelta(minutes=1)), lock_ttl=60)
    store.release_lock("web", "d-2")
    assert store.hold_target("web", "d-1", None, EPOCH + 30, EPOCH + 990) is False          # the target moved on
    assert store.get_lock("web") is None


def test_the_lock_is_extended_and_released_by_its_holder_only(store: DeploymentStore) -> None:
    store.start_deployment(deployment("d-1"), lock_ttl=60)
    store.extend_lock("web", "d-2", EPOCH + 999)
    store.extend_lock("web", "d-1", EPOCH + 900)
    assert store.get_lock("web") == Lock("d-1", None, EPOCH, EPOCH + 900)
    assert store.release_lock("web", "d-2") is False
    assert store.release_lock("web", "d-1") is True
    assert store.get_lock("web") is None


def test_settling_records_the_revision_unless_a_newer_deployment_did(store: DeploymentStore) -> None:
    store.put_target(SPEC, "alice")
    store.start_deployment(deployment("d-1"), lock_ttl=60)
    assert store.settle_target("web", "d-1", V1, T0) is True
    newer = T0 + timedelta(minutes=5)
    store.start_deployment(deployment("d-2", newer), lock_ttl=60)
    assert store.settle_target("web", "d-2", V2, newer) is True
    assert store.settle_target("web", "d-1", V1, T0) is False           # finishing again after a crash
    record = store.get_target("web")
    assert record is not None and (record.current_revision, record.last_deployment_id) == (V2, "d-2")


def test_a_failed_deployment_settles_without_a_revision(store: DeploymentStore) -> None:
    store.put_target(SPEC, "alice")
    store.start_deployment(deployment("d-1"), lock_ttl=60)
    assert store.settle_target("web", "d-1", None, T0) is True
    record = store.get_target("web")
    assert record is not None and record.current_revision is None and store.get_lock("web") is None


def test_settling_keeps_the_instance_map_written_by_the_lock_holder_only(store: DeploymentStore) -> None:
    store.put_target(SPEC, "alice")
    record = store.get_target("web")
    assert record is not None and record.fleet == Fleet()              # an item from before the map reads empty
    mine = Fleet(instances={"i-0123456789abcdef0": InstanceState(digest=V1.digest, deployment_id="d-1", at=T0),
                            "i-0123456789abcdef1": InstanceState()}, untracked=2)
    store.start_deployment(deployment("d-1"), lock_ttl=60)
    assert store.settle_target("web", "d-1", V1, T0, mine) is True
    record = store.get_target("web")
    assert record is not None and (record.fleet, record.current_revision) == (mine, V1)
    store.start_deployment(deployment("d-2"), lock_ttl=60)
    assert store.settle_target("web", "d-2", None, T0, Fleet()) is True         # a failure writes its map too
    record = store.get_target("web")
    assert record is not None and record.fleet == Fleet() and record.current_revision == V1
    assert store.settle_target("web", "d-1", V1, T0, mine) is False             # no longer the holder: left alone
    record = store.get_target("web")
    assert record is not None and record.fleet == Fleet()


def test_a_record_is_saved_only_over_the_version_it_was_read_at(store: DeploymentStore) -> None:
    store.start_deployment(deployment("d-1"), lock_ttl=60)
    read = store.get_deployment("d-1")
    saved = store.save_deployment(read.model_copy(update={"status": DeploymentStatus.IN_PROGRESS}))
    assert saved.version == read.version + 1 and store.get_deployment("d-1") == saved
    with pytest.raises(Conflict):
        store.save_deployment(read)
    with pytest.raises(Conflict):
        store.save_deployment(deployment("d-unknown"))


def test_an_abandoned_deployment_leaves_nothing_of_its_own(store: DeploymentStore) -> None:
    store.start_deployment(deployment("d-1", job_id="job-1"), lock_ttl=60)
    store.abandon_deployment(deployment("d-1", job_id="job-1"))
    assert (store.get_lock("web"), store.latest_start("web"), store.find_job("job-1")) == (None, None, None)
    with pytest.raises(DeploymentNotFound):
        store.get_deployment("d-1")


def test_a_target_history_is_newest_first(store: DeploymentStore) -> None:
    for minute, name in enumerate(["d-1", "d-2", "d-3"]):
        store.start_deployment(deployment(name, T0 + timedelta(minutes=minute)), lock_ttl=60)
        store.release_lock("web", name)
    page, more = store.list_deployments("web", limit=2)
    assert [d.deployment_id for d in page] == ["d-3", "d-2"] and more is not None
    page, more = store.list_deployments("web", limit=5)
    assert [d.deployment_id for d in page] == ["d-3", "d-2", "d-1"] and more is None
    assert store.list_deployments("other") == ([], None)


def test_commands_are_indexed_by_deployment(store: DeploymentStore) -> None:
    assert store.find_command("c-1") is None
    store.index_command("c-1", "d-1", EPOCH + 86400)
    assert store.find_command("c-1") == "d-1"
