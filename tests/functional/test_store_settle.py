"""A finished deployment settles its target: the current revision and the lock, together, never backwards in time,
and never half-way on a transient failure. On moto's DynamoDB (conditions and transactions are real there); the
transient cancellation is botocore's Stubber, validated against DynamoDB's own service model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Revision
from chalicelib.domain.errors import AwsCallFailed
from tests.conftest import TABLE, World
from tests.functional.support import store_with_target

# Deployment ids of one second may sort either way; their start times (to the microsecond) do not.
OLDER, MINE, NEWER = "d-20261127020000-ffff0000", "d-20261127020000-aaaa0000", "d-20261127020000-0000bbbb"
NOW = 1_800_000_000
STARTED = {deployment_id: datetime(2026, 11, 27, 2, 0, 0, microsecond, tzinfo=UTC)
           for deployment_id, microsecond in ((OLDER, 100), (MINE, 200), (NEWER, 300))}


def lock(store: DeploymentStore, deployment_id: str) -> None:
    """The target's lock, held by `deployment_id` (as DeploymentService.start leaves it)."""
    store._db.put_item(TableName=TABLE, Item={"pk": {"S": "TARGET#web"}, "sk": {"S": "LOCK"},
                                              "deployment_id": {"S": deployment_id},
                                              "acquired_at": {"N": str(NOW)}, "expires_at": {"N": str(NOW + 600)}})


def settle(store: DeploymentStore, deployment_id: str, revision: Revision | None) -> bool:
    return store.settle_target("web", deployment_id, revision, STARTED[deployment_id])


def revision(tag: str) -> Revision:
    return Revision(image=f"registry.example.com/web:{tag}", digest="sha256:" + tag.encode().hex().ljust(64, "0"))


@pytest.fixture
def store(aws: World) -> DeploymentStore:
    return store_with_target(aws.client("dynamodb"))


def current(store: DeploymentStore) -> tuple[Revision | None, str | None]:
    record = store.get_target("web")
    assert record is not None
    return record.current_revision, record.last_deployment_id


def test_a_success_records_its_revision_and_frees_the_target(store: DeploymentStore) -> None:
    lock(store, MINE)
    assert settle(store, MINE, revision("v2")) is True
    assert current(store) == (revision("v2"), MINE) and store.get_lock("web") is None


def test_a_failure_frees_the_target_and_keeps_its_revision(store: DeploymentStore) -> None:
    settle(store, OLDER, revision("v1"))
    lock(store, MINE)
    assert settle(store, MINE, None) is True
    assert current(store) == (revision("v1"), OLDER) and store.get_lock("web") is None


def test_a_success_whose_lock_expired_still_records_its_revision(store: DeploymentStore) -> None:
    assert settle(store, MINE, revision("v2")) is False
    assert current(store) == (revision("v2"), MINE)


def test_a_lock_taken_over_is_left_to_its_holder(store: DeploymentStore) -> None:
    lock(store, NEWER)
    assert settle(store, MINE, revision("v2")) is False
    assert store.get_lock("web") is not None and store.get_lock("web").deployment_id == NEWER  # type: ignore[union-attr]
    assert current(store) == (revision("v2"), MINE)


def test_finishing_again_never_turns_the_target_back(store: DeploymentStore) -> None:
    """Settled, the record's save failed, a newer deployment ran to success: finishing the older one again (the next
    refresh does) must not put its revision back."""
    lock(store, MINE)
    settle(store, MINE, revision("v2"))
    lock(store, NEWER)
    settle(store, NEWER, revision("v3"))
    assert settle(store, MINE, revision("v2")) is False
    assert current(store) == (revision("v3"), NEWER)


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"])
def test_a_transient_cancellation_writes_nothing_and_is_an_aws_failure(aws: World, store: DeploymentStore,
                                                                       reason: str) -> None:
    lock(store, MINE)
    client = aws.client("dynamodb")
    with Stubber(client) as stub:
        stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException",
                              service_message="Transaction cancelled", http_status_code=400,
                              modeled_fields={"CancellationReasons": [{"Code": reason}, {"Code": "None"}]})
        with pytest.raises(AwsCallFailed, match="TransactionCanceledException"):
            settle(DeploymentStore(client, TABLE), MINE, revision("v2"))
    assert store.get_lock("web") is not None and current(store) == (None, None)
