"""The circuit breaker's failure window on moto's DynamoDB: two failures recorded at once both count, a reset is not
undone by a failure read before it, and a window that never stops changing is reported instead of retried forever.

The interleaving is driven, not hoped for: the first writer's client runs the other writer's whole call after the
first writer has read the window and before its write reaches DynamoDB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.store import DeploymentStore
from chalicelib.adapters.store.targets import MAX_BREAKER_WRITES
from chalicelib.domain.errors import Conflict
from tests.conftest import TABLE, World
from tests.functional.support import store_with_target

NOW = 1_800_000_000


class WriteDelayed:
    """A DynamoDB client that runs `meanwhile` before each of the next `times` UpdateItems it sends: another writer's
    call lands between this writer's read and its write."""

    def __init__(self, client: Any, meanwhile: Callable[[], None], times: int = 1) -> None:
        self._client = client
        self._meanwhile = meanwhile
        self._times = times
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **params: Any) -> Any:
        self.writes += 1
        if self._times:
            self._times -= 1
            self._meanwhile()
        return self._client.update_item(**params)


@pytest.fixture
def store(aws: World) -> DeploymentStore:
    return store_with_target(aws.client("dynamodb"))


def delayed(aws: World, meanwhile: Callable[[], None], times: int = 1) -> tuple[DeploymentStore, WriteDelayed]:
    client = WriteDelayed(aws.client("dynamodb"), meanwhile, times)
    return DeploymentStore(client, TABLE), client


def failures(store: DeploymentStore) -> tuple[tuple[int, ...], int | None]:
    record = store.get_target("web")
    assert record is not None
    return record.recent_failures, record.breaker_open_since


@pytest.mark.parametrize("other_at", [NOW - 1, NOW], ids=["earlier-second", "same-second"])
def test_two_failures_recorded_at_once_both_count(aws: World, store: DeploymentStore, other_at: int) -> None:
    first, client = delayed(aws, lambda: store.record_failure("web", at=other_at, keep_after=0, open_breaker=False))
    first.record_failure("web", at=NOW, keep_after=0, open_breaker=False)

    assert failures(store) == ((other_at, NOW), None)
    assert client.writes == 2          # its first write found the window moved, read it again and wrote once more


def test_a_concurrent_writer_that_opens_the_breaker_keeps_it_open(aws: World, store: DeploymentStore) -> None:
    store.record_failure("web", at=NOW - 20, keep_after=0, open_breaker=False)
    first, _ = delayed(aws, lambda: store.record_failure("web", at=NOW - 10, keep_after=0, open_breaker=True))
    first.record_failure("web", at=NOW, keep_after=NOW - 15, open_breaker=False)

    assert failures(store) == ((NOW - 10, NOW), NOW - 10)


def test_a_failure_read_before_a_reset_does_not_bring_the_old_window_back(aws: World, store: DeploymentStore) -> None:
    store.record_failure("web", at=NOW - 20, keep_after=0, open_breaker=True)
    first, _ = delayed(aws, lambda: store.reset_breaker("web", "alice"))
    first.record_failure("web", at=NOW, keep_after=0, open_breaker=False)

    assert failures(store) == ((NOW,), None)


def test_a_window_that_keeps_changing_is_a_conflict_after_a_bounded_number_of_writes(
        aws: World, store: DeploymentStore) -> None:
    others = iter(range(NOW - 100, NOW))
    first, client = delayed(aws, lambda: store.record_failure("web", at=next(others), keep_after=0,
                                                              open_breaker=False), times=MAX_BREAKER_WRITES)
    with pytest.raises(Conflict, match=f"the failure at {NOW} was not recorded"):
        first.record_failure("web", at=NOW, keep_after=0, open_breaker=False)

    assert client.writes == MAX_BREAKER_WRITES
    assert failures(store) == (tuple(range(NOW - 100, NOW - 100 + MAX_BREAKER_WRITES)), None)


def test_a_window_written_as_a_number_set_is_read_and_kept(aws: World, store: DeploymentStore) -> None:
    aws.client("dynamodb").update_item(
        TableName=TABLE, Key={"pk": {"S": "TARGET#web"}, "sk": {"S": "SPEC"}},
        UpdateExpression="SET recent_failures = :f", ExpressionAttributeValues={":f": {"NS": [str(NOW - 5),
                                                                                           str(NOW - 9)]}})
    assert failures(store) == ((NOW - 9, NOW - 5), None)

    store.record_failure("web", at=NOW, keep_after=NOW - 6, open_breaker=False)
    assert failures(store) == ((NOW - 5, NOW), None)


def test_a_failure_of_a_target_that_does_not_exist_writes_nothing(aws: World, store: DeploymentStore) -> None:
    store.record_failure("gone", at=NOW, keep_after=0, open_breaker=True)
    assert store.get_target("gone") is None
