"""A target's history a page at a time, on moto's DynamoDB: the cursor is an opaque string that leads to the next
page, and one the store did not give for this target is InvalidCursor before any DynamoDB call is made, never a
DynamoDB ValidationException."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.store import DeploymentStore
from chalicelib.adapters.store.codec import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from chalicelib.domain.deployment import Deployment, Revision
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.spec import TargetSpec
from tests.conftest import TABLE, World

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SPEC = TargetSpec.model_validate({"target": "web", "instances": {"tags": {"app": "web"}},
                                  "container": {"name": "web"}})


def recorded(store: DeploymentStore, number: int) -> str:
    """A deployment record of target web, created `number` minutes after T0 (as DeploymentService.start writes it)."""
    at = T0 + timedelta(minutes=number)
    deployment = Deployment(deployment_id=f"d-20261127090000-{number:08x}", target="web", spec=SPEC,
                            revision=Revision(image=f"registry.example.com/web:v{number}"), trigger="api",
                            caller="alice", created_at=at, updated_at=at)
    assert store.start_deployment(deployment, lock_ttl=600) is None
    assert store.release_lock("web", deployment.deployment_id)
    return deployment.deployment_id


@pytest.fixture
def store(aws: World) -> DeploymentStore:
    store = DeploymentStore(aws.client("dynamodb"), TABLE)
    store.put_target(SPEC, "test")
    return store


def cursor_of(fields: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def test_pages_follow_their_cursors_newest_first(store: DeploymentStore) -> None:
    ids = [recorded(store, n) for n in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        page, cursor = store.list_deployments("web", limit=2, cursor=cursor)
        seen += [deployment.deployment_id for deployment in page]
        if cursor is None:
            break
        assert "=" not in cursor and "TARGET#" not in cursor and '"S"' not in cursor
    assert seen == ids[::-1] and cursor is None


def test_a_cursor_leads_only_through_its_own_targets_history(store: DeploymentStore) -> None:
    recorded(store, 0), recorded(store, 1)
    _, cursor = store.list_deployments("web", limit=1)
    assert cursor is not None
    with pytest.raises(InvalidCursor, match="cursor"):
        store.list_deployments("api", limit=1, cursor=cursor)


GOOD = {"pk": "DEPLOYMENT#d-1", "sk": "RECORD", "gsi1pk": "TARGET#web", "gsi1sk": "2026-11-27T09:00:00+00:00#d-1"}


@pytest.mark.parametrize("cursor", [
    "garbage!", "e30", cursor_of([]), cursor_of({**GOOD, "extra": "x"}), cursor_of({**GOOD, "sk": "LOCK"}),
    cursor_of({**GOOD, "pk": "TARGET#web"}), cursor_of({**GOOD, "pk": "DEPLOYMENT#"}),
    cursor_of({**GOOD, "gsi1sk": "#d-1"}), cursor_of({**GOOD, "gsi1sk": "2026-11-27T09:00:00+00:00#d-2"}),
    cursor_of({**GOOD, "gsi1sk": "x" * 1200 + "#d-1"}), cursor_of({**GOOD, "pk": "DEPLOYMENT#d-" + "a" * 70}),
    cursor_of({**GOOD, "sk": 1}), "A" * (MAX_CURSOR_CHARS + 1), base64.urlsafe_b64encode(b"\xff\xfe").decode(),
], ids=lambda cursor: cursor[:24])
def test_a_forged_or_garbled_cursor_is_invalid_before_dynamodb_sees_it(store: DeploymentStore, cursor: str) -> None:
    store._db = None          # no call may be made: the cursor is refused first
    with pytest.raises(InvalidCursor):
        store.list_deployments("web", limit=1, cursor=cursor)


def test_the_cursor_stands_for_dynamodbs_last_evaluated_key() -> None:
    last_key = {name: {"S": value} for name, value in GOOD.items()}
    assert decode_cursor(encode_cursor(last_key), "web") == last_key
