"""GET /deployments: history across targets by caller, digest, time, target and status, read from DynamoDB indexes
on moto (botocore validating each call), a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.adapters.store.codec import deployment_item, table_definition
from chalicelib.domain.deployment import Deployment, DeploymentStatus, Revision
from chalicelib.domain.spec import TargetSpec
from tests.api.support import call, identity, push_image, register, settle, spec
from tests.conftest import TABLE, World

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/deployer/bob"
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
T0 = datetime(2026, 9, 30, 23, 0, tzinfo=UTC)


def record(world: World, number: int, target: str, caller: str, digest: str | None, at: datetime,
           status: DeploymentStatus = DeploymentStatus.SUCCEEDED) -> str:
    deployment_id = f"d-{number:04d}"
    deployment = Deployment(deployment_id=deployment_id, target=target,
                            spec=TargetSpec.model_validate(spec(target)),
                            revision=Revision(image="registry.example/web:v1", digest=digest), trigger="api",
                            caller=caller, status=status, created_at=at, updated_at=at, version=1)
    world.client("dynamodb").put_item(TableName=TABLE, Item=deployment_item(deployment))
    return deployment_id


@pytest.fixture
def history(aws: World) -> dict[str, str]:
    """Six deployments over three months, two targets, two callers and two digests."""
    rows = [(1, "web", ALICE, A, T0, DeploymentStatus.SUCCEEDED),
            (2, "api", BOB, B, T0 + timedelta(hours=2), DeploymentStatus.FAILED),             # October
            (3, "web", BOB, A, T0 + timedelta(days=10), DeploymentStatus.SUCCEEDED),
            (4, "api", ALICE, None, T0 + timedelta(days=20), DeploymentStatus.FAILED),
            (5, "web", ALICE, B, T0 + timedelta(days=40), DeploymentStatus.ROLLED_BACK),       # November
            (6, "web", BOB, B, T0 + timedelta(days=41), DeploymentStatus.SUCCEEDED)]
    return {f"d{n}": record(aws, n, *row) for n, *row in rows}


def ids(query: dict[str, Any]) -> list[str]:
    reply = call("GET", f"/deployments?{urlencode({'since': '2026-01-01T00:00:00Z', **query})}")
    assert reply.status == 200, reply
    return [d["deployment_id"] for d in reply.body["deployments"]]


def test_every_index_the_table_definition_names_is_keyed_on_the_creation_time() -> None:
    indexes = {i["IndexName"]: i["KeySchema"] for i in table_definition(TABLE)["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by_target", "by_time", "by_caller", "by_digest"}
    assert all(schema[1] == {"AttributeName": "gsi1sk", "KeyType": "RANGE"} for schema in indexes.values())


@pytest.mark.parametrize("query, expected", [
    ({}, [6, 5, 4, 3, 2, 1]),
    ({"caller": ALICE}, [5, 4, 1]),
    ({"digest": B}, [6, 5, 2]),
    ({"target": "api"}, [4, 2]),
    ({"status": "FAILED"}, [4, 2]),
    ({"caller": BOB, "digest": B}, [6, 2]),
    ({"caller": ALICE, "target": "web", "status": "ROLLED_BACK"}, [5]),
    ({"digest": A, "target": "api"}, []),
    ({"since": "2026-10-01T00:00:00Z", "until": "2026-11-09T23:00:00+00:00"}, [4, 3, 2]),
    ({"since": "2026-10-01T00:00:00Z", "until": "2026-11-09T23:00:00.5+00:00"}, [5, 4, 3, 2]),
    ({"since": "2026-10-01T00:00:00", "until": "2026-10-01T01:00:01Z"}, [2]),
    ({"caller": ALICE, "since": "2026-10-01T00:00:00Z"}, [5, 4]),
])
def test_history_across_targets_by_each_filter_newest_first(history: dict[str, str], query: dict[str, Any],
                                                            expected: list[int]) -> None:
    assert ids(query) == [f"d-{n:04d}" for n in expected]


def test_pages_cross_month_partitions_and_filters_without_losing_or_repeating_one(history: dict[str, str]) -> None:
    for query in ({}, {"status": "SUCCEEDED"}, {"caller": BOB}):
        everything = ids(query)
        seen: list[str] = []
        token = None
        for _ in range(10):
            page = call("GET", "/deployments?" + urlencode({"since": "2026-01-01T00:00:00Z", "limit": 1, **query,
                                                            **({"next": token} if token else {})}))
            assert page.status == 200, page
            assert len(page.body["deployments"]) <= 1
            seen += [d["deployment_id"] for d in page.body["deployments"]]
            token = page.body["next"]
            if token is None:
                break
        assert seen == everything, query


def test_a_token_for_other_filters_or_a_forged_one_is_a_400_naming_next(history: dict[str, str]) -> None:
    first = call("GET", "/deployments?" + urlencode({"caller": ALICE, "limit": 1}))
    token = first.body["next"]
    assert token and "CALLER#" not in token
    for query in ({"caller": BOB, "next": token}, {"next": token}, {"next": "garbage"}, {"next": "e30"}):
        reply = call("GET", "/deployments?" + urlencode(query))
        assert reply.status == 400 and reply.error["field"] == "next", (query, reply)


@pytest.mark.parametrize("query, field", [
    ("caller=a%20b", "caller"), ("caller=" + "a" * 600, "caller"), ("digest=sha256:abc", "digest"),
    ("digest=latest", "digest"), ("since=2h", "since"), ("since=0001-01-01T00:00:00%2B14:00", "since"),
    ("until=9999-12-31T23:59:59-14:00", "until"), ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "until"),
    ("target=no%20such", "target"), ("status=DONE", "status"), ("limit=0", "limit"), ("limit=101", "limit"),
    ("colour=blue", "colour"), ("next=%F0%9F%92%A5", "next"),
])
def test_every_filter_is_checked_at_the_edge(aws: World, query: str, field: str) -> None:
    reply = call("GET", f"/deployments?{query}")
    assert reply.status == 400 and reply.error["field"] == field, reply


def test_a_deployment_started_through_the_api_is_found_by_its_caller_and_digest(
        aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    register(aws)
    digest = push_image(aws, "web", "v7")
    with identity(monkeypatch, user_arn=ALICE):
        started = call("POST", "/targets/web/deployments", {"image": aws.image_uri("web", "v7")})
        assert started.status == 202, started
        settle(started.body["deployment_id"])
        by_caller = call("GET", "/deployments?" + urlencode({"caller": ALICE}))
        by_digest = call("GET", "/deployments?" + urlencode({"digest": digest}))
        by_time = call("GET", "/deployments")
        nobody = call("GET", "/deployments?" + urlencode({"caller": BOB}))
    wanted = [started.body["deployment_id"]]
    for reply in (by_caller, by_digest, by_time):
        assert [d["deployment_id"] for d in reply.body["deployments"]] == wanted, reply
    assert by_caller.body["deployments"][0]["caller"] == ALICE
    assert nobody.body["deployments"] == []


def test_no_query_reads_the_table_with_a_scan(history: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.store.table import Table

    used: list[str] = []
    real = Table._call

    def spy(operation: str, method: Any, **params: Any) -> Any:
        used.append(f"{operation} {params.get('IndexName', '')}")
        return real(operation, method, **params)

    monkeypatch.setattr(Table, "_call", staticmethod(spy))
    ids({"caller": ALICE})
    ids({"digest": A})
    ids({})
    assert used and all(u.startswith("Query by_") for u in used), used
    assert {u.split()[1] for u in used} == {"by_caller", "by_digest", "by_time"}


def test_provisioning_adds_the_audit_indexes_to_a_table_made_before_them(aws: World, monkeypatch: pytest.MonkeyPatch
                                                                        ) -> None:
    """An older table has `by_target` only: provisioning creates the others, one UpdateTable each."""
    from tools.provision import provision

    dynamodb = aws.client("dynamodb")
    old = table_definition("berth-old")
    old["GlobalSecondaryIndexes"] = old["GlobalSecondaryIndexes"][:1]
    old["AttributeDefinitions"] = old["AttributeDefinitions"][:4]
    dynamodb.create_table(**old)
    monkeypatch.setattr("tools.provision.stage_environment", lambda stage: {"BERTH_TABLE": "berth-old"})

    done = provision("old", dynamodb)
    assert [line for line in done if "index" in line] == [
        f"table berth-old: index {name} created" for name in ("by_time", "by_caller", "by_digest")]
    indexes = dynamodb.describe_table(TableName="berth-old")["Table"]["GlobalSecondaryIndexes"]
    assert sorted(i["IndexName"] for i in indexes) == ["by_caller", "by_digest", "by_target", "by_time"]
    assert not [line for line in provision("old", dynamodb) if "index" in line]


def test_records_saved_before_the_audit_indexes_join_them_by_the_backfill(aws: World) -> None:
    from tests.api.support import store
    from tools.backfill_audit import backfill

    register(aws, instances=0)
    old = record(aws, 9, "web", ALICE, A, T0)
    dynamodb = aws.client("dynamodb")
    dynamodb.update_item(TableName=TABLE, Key={"pk": {"S": f"DEPLOYMENT#{old}"}, "sk": {"S": "RECORD"}},
                         UpdateExpression="REMOVE gsi2pk, gsi3pk, gsi4pk")
    assert ids({"caller": ALICE}) == [] and ids({}) == [] and ids({"target": "web"}) == [old]

    assert backfill(store(aws)) == 1
    assert ids({"caller": ALICE}) == ids({"digest": A}) == ids({}) == [old]
    assert backfill(store(aws)) == 1      # the same keys again, on the version read: nothing changes
    assert store(aws).get_deployment(old).version == 1
