"""PUT/GET targets through chalice's test client on moto: validation, identity, lock and breaker state."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import localaws
from chalicelib.domain.deployment import Revision
from localaws import InstanceOutcome
from tests.api.support import call, deploy, identity, push_image, register, spec, store
from tests.conftest import World

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
ARN = "arn:aws:iam::123456789012:user/alice"


def test_put_registers_a_target_filling_the_name_from_the_path(aws: World) -> None:
    body = spec()
    del body["target"]
    reply = call("PUT", "/targets/web", body)

    assert reply.status == 200
    assert reply.body["name"] == "web" and reply.body["spec"]["target"] == "web"
    assert reply.body["spec"]["rollout"] == {"max_concurrency": "25%", "max_errors": "0", "timeout_seconds": 3600}
    assert reply.body["current_revision"] is None and reply.body["lock"] is None
    assert reply.body["breaker"] == {"open": False, "open_since": None, "recent_failures": []}
    stored = store(aws).get_target("web")
    assert stored is not None and stored.spec.container.ports == ["5000:5000"]


def test_put_updates_an_existing_target(aws: World) -> None:
    register(aws, instances=0)
    reply = call("PUT", "/targets/web", spec(rollout={"max_concurrency": "1"}))
    assert reply.status == 200 and reply.body["spec"]["rollout"]["max_concurrency"] == "1"


@pytest.mark.parametrize("body, field, says", [
    (spec("other"), "target", "the path names 'web'"),
    ({**spec(), "max_concurency": 2}, "max_concurency", "unknown key"),
    (spec(container={"name": "web", "env": {"BAD-NAME": "x"}}), "container.env.BAD-NAME", "container.env.BAD-NAME"),
    (spec(instances={"ids": ["i-123"]}), "instances.ids.0", "instances.ids.0"),
    (spec(instances={}), "instances", "exactly one of 'tags'"),
    (spec(image="web:latest;rm -rf /"), "image", "image"),
    (spec(health_check={"port": 70000}), "health_check.port", "less than or equal to 65535"),
])
def test_put_with_a_bad_spec_is_a_400_naming_the_field(aws: World, body: dict[str, object], field: str,
                                                        says: str) -> None:
    reply = call("PUT", "/targets/web", body)

    assert reply.status == 400, reply
    assert reply.error["code"] == "InvalidRequest" and reply.error["field"] == field
    assert says in reply.error["message"]
    assert store(aws).get_target("web") is None


def test_a_valid_spec_too_large_to_store_is_a_400_naming_its_size(aws: World) -> None:
    env = {f"V{n}": "x" * 4096 for n in range(128)}
    reply = call("PUT", "/targets/web", spec(container={"name": "web", "env": env}))

    assert reply.status == 400, reply
    assert reply.error["field"] == "container.env"
    assert f"{len(json.dumps(env, separators=(',', ':')))} bytes" in reply.error["message"]
    assert "at most 49152" in reply.error["message"]
    assert store(aws).get_target("web") is None


def test_hybrid_managed_node_ids_are_a_400_saying_why(aws: World) -> None:
    reply = call("PUT", "/targets/web", spec(instances={"ids": ["mi-0123456789abcdef0"]}))
    assert reply.status == 400 and reply.error["field"] == "instances.ids.0"
    assert "hybrid managed node" in reply.error["message"]


def test_specs_stored_before_a_rule_was_added_still_load(aws: World) -> None:
    """A rule added since a spec was stored (two-character names, no mi- ids, no leading zeros, a health check shorter
    than the command, the size bounds) refuses new specs; it must not make the stored ones unreadable."""
    old = spec("old", instances={"ids": ["mi-0123456789abcdef0"]},
               container={"name": "w", "ports": ["080:80", "80:81"], "env": {f"V{n}": "x" * 4096 for n in range(16)}},
               health_check={"port": 80, "timeout_seconds": 600}, rollout={"timeout_seconds": 300})
    aws.client("dynamodb").put_item(TableName="berth-test", Item={
        "pk": {"S": "TARGET#old"}, "sk": {"S": "SPEC"}, "spec": {"S": json.dumps(old)}, "updated_by": {"S": "past"}})

    assert call("GET", "/targets").status == 200
    reply = call("GET", "/targets/old")
    assert reply.status == 200 and reply.body["spec"]["container"]["name"] == "w"
    assert call("PUT", "/targets/old", old).status == 400


def test_secret_env_values_never_echo_in_errors(aws: World) -> None:
    reply = call("PUT", "/targets/web", spec(container={"name": "web", "env": {"TOKEN": "s3cret\nx"}}))
    assert reply.status == 400 and "s3cret" not in str(reply.body)


@pytest.mark.parametrize("raw, headers, status, field", [
    (b"{not json", {}, 400, "body"),
    (b"[1, 2]", {}, 400, "body"),
    (b'"web"', {}, 400, "body"),
    (b"", {}, 400, "body"),
    (b"\xff\xfe{}", {}, 400, "body"),
    (b'{"target": "web\\ud800"}', {}, 400, "body"),
    (b"[" * 50_000 + b"]" * 50_000, {}, 400, "body"),
    (b'{"target": "web", "retry": {"max_attempts": ' + b"9" * 5000 + b"}}", {}, 400, "body"),
    (b'{"target": "web"}', {"content-type": "text/plain"}, 415, None),
    (b"x" * (1024 * 1024 + 1), {}, 413, None),
])
def test_malformed_bodies_are_4xx_with_a_json_error(aws: World, raw: bytes, headers: dict[str, str], status: int,
                                                    field: str | None) -> None:
    reply = call("PUT", "/targets/web", raw=raw, headers=headers)
    assert reply.status == status, reply
    assert reply.error["field"] == field and reply.error["message"]


@pytest.mark.parametrize("path", ["/targets/-web", "/targets/w%C3%A9b", "/targets/" + "a" * 64,
                                  "/targets/web%0A", "/targets/%F0%9F%92%A5", "/targets/..%2Fetc"])
def test_bad_target_names_in_the_path_are_400(aws: World, path: str) -> None:
    for method, suffix in (("GET", ""), ("PUT", ""), ("POST", "/deployments"), ("POST", "/rollback"),
                           ("GET", "/deployments")):
        reply = call(method, path + suffix, spec() if method == "PUT" else None)
        assert reply.status == 400 and reply.error["field"] == "name", (method, path, reply)


def test_unknown_target_is_404(aws: World) -> None:
    for method, suffix in (("GET", ""), ("POST", "/deployments"), ("POST", "/rollback"), ("GET", "/deployments")):
        reply = call(method, "/targets/nope" + suffix)
        assert reply.status == 404 and reply.error["code"] == "TargetNotFound", (method, suffix, reply)
        assert "PUT /targets/nope" in reply.error["message"]


def test_list_targets(aws: World) -> None:
    assert call("GET", "/targets").body == {"targets": []}
    register(aws, "web", instances=0)
    register(aws, "api", instances=0)
    reply = call("GET", "/targets")
    assert reply.status == 200
    assert [t["name"] for t in reply.body["targets"]] == ["api", "web"]
    assert reply.body["targets"][0]["breaker_open"] is False


def test_status_shows_revision_lock_and_last_deployment(aws: World) -> None:
    register(aws)
    digest = push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    started = deploy(image=aws.image_uri("web", "v1"))

    status = call("GET", "/targets/web").body
    assert status["lock"]["deployment_id"] == started.body["deployment_id"]
    assert status["last_deployment"]["deployment_id"] == started.body["deployment_id"]
    assert status["last_deployment"]["status"] == "IN_PROGRESS"
    assert status["current_revision"] is None

    localaws.set_default_outcome(InstanceOutcome())
    call("POST", f"/deployments/{started.body['deployment_id']}/cancel")
    register(aws, instances=0)
    revision = Revision(image=aws.image_uri("web", "v1"), digest=digest)
    store(aws).settle_target("web", started.body["deployment_id"], revision, datetime.now(UTC))
    status = call("GET", "/targets/web").body
    assert status["lock"] is None
    assert status["current_revision"]["tag"] == "v1" and status["current_revision"]["digest"] == digest
    assert status["current_revision"]["pinned"].endswith(f"/web@{digest}")


def test_status_shows_an_open_breaker(aws: World) -> None:
    register(aws, instances=0)
    store(aws).record_failure("web", at=1_800_000_000, keep_after=0, open_breaker=True)
    status = call("GET", "/targets/web").body
    assert status["breaker"]["open"] is True
    assert status["breaker"]["open_since"].startswith("2027-01-15T08:00:00")
    assert len(status["breaker"]["recent_failures"]) == 1
    assert call("GET", "/targets").body["targets"][0]["breaker_open"] is True


def test_the_callers_iam_identity_is_recorded_on_the_target(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    with identity(monkeypatch, user_arn=ARN):
        reply = call("PUT", "/targets/web", spec())
    assert reply.body["updated_by"] == ARN
    with identity(monkeypatch, user_arn=None, caller="AIDAEXAMPLE:bob"):
        reply = call("PUT", "/targets/web", spec())
    assert reply.body["updated_by"] == "AIDAEXAMPLE:bob"
    assert call("PUT", "/targets/web", spec()).body["updated_by"] == "unknown"


def test_a_spec_got_from_the_api_put_back_changes_nothing(aws: World) -> None:
    """`berth targets get` then `put`: what GET answers as the spec (defaults filled in) is a spec PUT takes as is."""
    dynamodb = aws.client("dynamodb")
    key = {"pk": {"S": "TARGET#web"}, "sk": {"S": "SPEC"}}
    container = {"name": "web", "ports": ["5000:5000"], "env": {"MODE": "on"}}
    assert call("PUT", "/targets/web", spec(health_check={"port": 5000}, rollout={"max_concurrency": "1"},
                                            container=container)).status == 200
    stored = dynamodb.get_item(TableName="berth-test", Key=key)["Item"]["spec"]["S"]
    got = call("GET", "/targets/web").body["spec"]

    assert call("PUT", "/targets/web", got).status == 200
    assert dynamodb.get_item(TableName="berth-test", Key=key)["Item"]["spec"]["S"] == stored
    assert call("GET", "/targets/web").body["spec"] == got
