"""Redeploy, roll back, follow, cancel and page through history over the REST API, on moto and localaws."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import Reply, call, deploy, hold_lock, identity, push_image, register, settle, store
from tests.conftest import World

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
ARN = "arn:aws:iam::123456789012:role/deployer"


def shipped(world: World, tag: str) -> tuple[str, str]:
    """Deploy tag to completion; returns (deployment id, digest)."""
    digest = push_image(world, "web", tag)
    started = deploy(image=world.image_uri("web", tag))
    assert started.status == 202, started
    assert settle(started.body["deployment_id"])["status"] == "SUCCEEDED"
    return started.body["deployment_id"], digest


def sent_scripts(world: World) -> list[str]:
    commands = world.client("ssm").list_commands()["Commands"]
    return ["\n".join(c["Parameters"]["commands"]) for c in sorted(commands, key=lambda c: c["RequestedDateTime"])]


def test_redeploy_answers_202_with_location_then_progresses_to_success(aws: World) -> None:
    instances = register(aws)
    digest = push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))

    reply = deploy(image=aws.image_uri("web", "v1"), reason="hotfix for INC-42")

    assert reply.status == 202
    deployment_id = reply.body["deployment_id"]
    assert reply.headers["Location"] == f"/deployments/{deployment_id}"
    assert reply.body["status"] == "IN_PROGRESS" and reply.body["trigger"] == "api"
    assert reply.body["revision"]["digest"] == digest
    assert reply.body["progress"] == {"total": 2, "succeeded": 0, "failed": 0, "pending": 2}
    assert [d["action"] for d in reply.body["history"]] == ["created", "dispatched", "reason"]
    assert reply.body["history"][-1]["detail"] == "hotfix for INC-42"

    final = settle(deployment_id)
    assert final["status"] == "SUCCEEDED" and final["final"] is True
    assert sorted(final["attempts"][0]["expected_instances"]) == instances
    assert final["progress"] == {"total": 2, "succeeded": 2, "failed": 0, "pending": 0}
    assert f"web@{digest}" in sent_scripts(aws)[0]
    assert call("GET", "/targets/web").body["current_revision"]["digest"] == digest


def test_progress_of_a_running_deployment_follows_the_commands_counts(aws: World) -> None:
    """While the command runs, GET shows SSM's counts; a clean success needs no per-instance result."""
    instances = register(aws, instances=4, rollout={"max_concurrency": "50%", "max_errors": "0"})
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    deployment_id = deploy(image=aws.image_uri("web", "v1")).body["deployment_id"]

    seen = []
    for _ in range(6):
        body = call("GET", f"/deployments/{deployment_id}").body
        seen.append((body["status"], body["progress"]["succeeded"], body["progress"]["pending"],
                     len(body["attempts"][-1]["instances"])))
        if body["final"]:
            break
    assert seen == [("IN_PROGRESS", 0, 4, 0), ("IN_PROGRESS", 2, 2, 0), ("SUCCEEDED", 4, 0, 0)]
    assert sorted(body["attempts"][-1]["expected_instances"]) == instances


def test_redeploy_without_image_ships_the_current_revision_again_by_digest(aws: World) -> None:
    register(aws)
    _, digest = shipped(aws, "v1")
    push_image(aws, "web", "v1-moved")  # whatever the tag points at now, the digest is what ships

    reply = deploy()

    assert reply.status == 202 and reply.body["revision"]["digest"] == digest
    assert settle(reply.body["deployment_id"])["status"] == "SUCCEEDED"
    scripts = sent_scripts(aws)
    assert len(scripts) == 2 and f"web@{digest}" in scripts[1]


def test_redeploy_with_nothing_to_deploy_is_a_400_on_image(aws: World) -> None:
    register(aws)
    reply = deploy()
    assert reply.status == 400 and reply.error["field"] == "image"


@pytest.mark.parametrize("image, says", [
    ("web:latest", "mutable tag"),
    ("Web;rm -rf /", "printable ASCII"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/missing:1", "is not in ECR"),
])
def test_redeploy_validates_the_image_like_the_pipeline(aws: World, image: str, says: str) -> None:
    register(aws)
    reply = deploy(image=image)
    assert reply.status == 400 and reply.error["field"] == "image" and says in reply.error["message"]
    assert sent_scripts(aws) == []


@pytest.mark.parametrize("body, field", [
    ({"image": "web:1", "colour": "blue"}, "colour"),
    ({"reset_breaker": "yes please"}, "reset_breaker"),
    ({"reason": "x" * 501}, "reason"),
    ({"image": ""}, "image"),
])
def test_redeploy_request_model_is_strict(aws: World, body: dict[str, Any], field: str) -> None:
    register(aws)
    reply = deploy(**body)
    assert reply.status == 400 and reply.error["field"] == field


def test_second_redeploy_while_one_runs_is_409_naming_it(aws: World) -> None:
    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))

    first = deploy(image=aws.image_uri("web", "v1"))
    second = deploy(image=aws.image_uri("web", "v1"))

    assert first.status == 202 and second.status == 409
    running = first.body["deployment_id"]
    assert second.error == {"code": "TargetBusy", "field": None,
                            "message": f"target 'web' is busy: deployment {running} is running"}
    assert call("POST", "/targets/web/rollback").status == 409
    assert len(sent_scripts(aws)) == 1


@pytest.mark.parametrize("callers", [2, 8])
def test_concurrent_redeploys_one_wins_the_lock(aws: World, callers: int) -> None:
    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    barrier = threading.Barrier(callers)
    replies: list[Reply] = []

    def redeploy() -> None:
        barrier.wait()
        replies.append(deploy(image=aws.image_uri("web", "v1")))

    threads = [threading.Thread(target=redeploy) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.status for r in replies) == [202] + [409] * (callers - 1), replies
    winner = next(r for r in replies if r.status == 202)
    assert all(winner.body["deployment_id"] in r.error["message"] for r in replies if r.status == 409)
    assert len(sent_scripts(aws)) == 1


def test_open_breaker_refuses_until_the_request_resets_it(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    register(aws)
    push_image(aws, "web", "v1")
    store(aws).record_failure("web", at=1_800_000_000, keep_after=0, open_breaker=True)

    refused = deploy(image=aws.image_uri("web", "v1"))
    assert refused.status == 409 and refused.error["code"] == "BreakerOpen"
    assert "reset_breaker" in refused.error["message"]
    assert call("POST", "/targets/web/rollback").error["code"] in ("BreakerOpen", "NothingToRollBack")

    with identity(monkeypatch, user_arn=ARN):
        reply = deploy(image=aws.image_uri("web", "v1"), reset_breaker=True)

    assert reply.status == 202 and reply.body["caller"] == ARN
    assert "breaker-reset" in [d["action"] for d in reply.body["history"]]
    record = store(aws).get_target("web")
    assert record is not None and record.breaker_open_since is None and record.recent_failures == ()
    assert record.updated_by == ARN


def test_busy_target_does_not_reset_its_breaker(aws: World) -> None:
    register(aws)
    push_image(aws, "web", "v1")
    hold_lock(aws, "web", "d-someone-else", expires_at=3_000_000_000)
    store(aws).record_failure("web", at=1_800_000_000, keep_after=0, open_breaker=True)

    reply = deploy(image=aws.image_uri("web", "v1"), reset_breaker=True)

    assert reply.status == 409 and "d-someone-else" in reply.error["message"]
    record = store(aws).get_target("web")
    assert record is not None and record.breaker_open_since == 1_800_000_000


def test_rollback_deploys_the_previous_good_digest(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    register(aws)
    first_id, v1 = shipped(aws, "v1")
    _, v2 = shipped(aws, "v2")
    localaws.set_default_outcome(InstanceOutcome(status="Failed", response_code=40))
    push_image(aws, "web", "v3")
    failed = deploy(image=aws.image_uri("web", "v3"))
    assert settle(failed.body["deployment_id"])["status"] == "FAILED"
    localaws.set_default_outcome(InstanceOutcome())

    with identity(monkeypatch, user_arn=ARN):
        reply = call("POST", "/targets/web/rollback", {"reason": "v3 is broken"})

    assert reply.status == 202 and reply.headers["Location"] == f"/deployments/{reply.body['deployment_id']}"
    assert reply.body["trigger"] == "rollback" and reply.body["caller"] == ARN
    assert reply.body["revision"]["digest"] == v1, "v2 is current, so the previous good revision is v1"
    assert reply.body["previous_revision"]["digest"] == v2
    assert settle(reply.body["deployment_id"])["status"] == "SUCCEEDED"
    assert f"web@{v1}" in sent_scripts(aws)[-1]

    again = call("POST", "/targets/web/rollback", {"to": first_id})
    assert again.status == 202 and again.body["revision"]["digest"] == v1


def test_rollback_to_must_name_a_succeeded_deployment_of_the_target(aws: World) -> None:
    register(aws)
    shipped(aws, "v1")
    localaws.set_default_outcome(InstanceOutcome(status="Failed", response_code=30))
    push_image(aws, "web", "v2")
    failed = deploy(image=aws.image_uri("web", "v2")).body["deployment_id"]
    settle(failed)

    for to, says in ((failed, "FAILED"), ("d-20990101000000-00000000", "no deployment"), ("nonsense!", "pattern")):
        reply = call("POST", "/targets/web/rollback", {"to": to})
        assert reply.status == 400 and reply.error["field"] == "to" and says in reply.error["message"], reply


def test_rollback_with_nothing_before_the_current_revision_is_409(aws: World) -> None:
    register(aws)
    assert call("POST", "/targets/web/rollback").error["code"] == "NothingToRollBack"
    shipped(aws, "v1")
    shipped(aws, "v1")
    reply = call("POST", "/targets/web/rollback")
    assert reply.status == 409 and reply.error["code"] == "NothingToRollBack"


def test_cancel_stops_the_command_marks_cancelled_and_frees_the_target(aws: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    running = deploy(image=aws.image_uri("web", "v1")).body["deployment_id"]

    with identity(monkeypatch, user_arn=ARN):
        reply = call("POST", f"/deployments/{running}/cancel", {"reason": "wrong image"})

    assert reply.status == 200 and reply.body["status"] == "CANCELLED"
    assert reply.body["history"][-1]["action"] == "cancelled"
    assert reply.body["history"][-1]["detail"] == f"cancelled by {ARN}: wrong image"
    assert reply.body["attempts"][-1]["ended_at"] is not None
    command = aws.client("ssm").list_commands()["Commands"][0]
    assert command["Status"] == "Cancelled"
    assert call("GET", "/targets/web").body["lock"] is None
    assert call("GET", f"/deployments/{running}").body["status"] == "CANCELLED"

    again = call("POST", f"/deployments/{running}/cancel")
    assert again.status == 409 and again.error["code"] == "DeploymentFinished"
    localaws.set_default_outcome(InstanceOutcome())
    assert deploy(image=aws.image_uri("web", "v1")).status == 202


def test_a_cancel_that_failed_after_closing_the_record_frees_the_target_when_asked_again(
        aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.store import DeploymentStore
    from chalicelib.domain.errors import AwsCallFailed

    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    running = deploy(image=aws.image_uri("web", "v1")).body["deployment_id"]
    release = DeploymentStore.release_lock

    def throttled(self: DeploymentStore, target: str, deployment_id: str) -> bool:
        raise AwsCallFailed("DynamoDB DeleteItem (lock) failed with ThrottlingException: slow down")

    monkeypatch.setattr(DeploymentStore, "release_lock", throttled)
    assert call("POST", f"/deployments/{running}/cancel").status == 502
    assert call("GET", "/targets/web").body["lock"]["deployment_id"] == running

    monkeypatch.setattr(DeploymentStore, "release_lock", release)
    again = call("POST", f"/deployments/{running}/cancel")
    assert again.status == 409 and again.error["code"] == "DeploymentFinished"
    assert call("GET", "/targets/web").body["lock"] is None
    localaws.set_default_outcome(InstanceOutcome())
    assert deploy(image=aws.image_uri("web", "v1")).status == 202


def test_unknown_or_malformed_deployment_ids(aws: World) -> None:
    for method, suffix in (("GET", ""), ("POST", "/cancel")):
        missing = call(method, f"/deployments/d-20990101000000-00000000{suffix}")
        assert missing.status == 404 and missing.error["code"] == "DeploymentNotFound"
        for bad in ("nope", "d-%00", "d-" + "a" * 80, "%E2%98%83"):
            reply = call(method, f"/deployments/{bad}{suffix}")
            assert reply.status == 400 and reply.error["field"] == "deployment_id", (bad, reply)


def test_history_newest_first_in_pages(aws: World) -> None:
    register(aws)
    register(aws, "api", instances=0)
    ids = [shipped(aws, f"v{n}")[0] for n in range(3)]

    first = call("GET", "/targets/web/deployments?limit=2")
    assert first.status == 200
    assert [d["deployment_id"] for d in first.body["deployments"]] == ids[::-1][:2]
    token = first.body["next"]
    assert token and "=" not in token and "TARGET#" not in token
    second = call("GET", f"/targets/web/deployments?limit=2&next={token}")
    assert [d["deployment_id"] for d in second.body["deployments"]] == ids[:1]
    everything = call("GET", "/targets/web/deployments")
    assert [d["deployment_id"] for d in everything.body["deployments"]] == ids[::-1]
    assert everything.body["next"] is None

    assert call("GET", f"/targets/api/deployments?next={token}").error["field"] == "next"


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("limit=-1", "limit"),
    ("next=garbage", "next"), ("next=%F0%9F%92%A5", "next"), ("next=e30", "next"), ("colour=blue", "colour"),
])
def test_history_rejects_bad_queries(aws: World, query: str, field: str) -> None:
    register(aws, instances=0)
    reply = call("GET", f"/targets/web/deployments?{query}")
    assert reply.status == 400 and reply.error["field"] == field, reply


def test_a_failing_aws_call_is_a_502_json_error(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.ssm import SsmGateway
    from chalicelib.domain.errors import AwsCallFailed

    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    running = deploy(image=aws.image_uri("web", "v1")).body["deployment_id"]

    def refuse(self: SsmGateway, command_id: str) -> None:
        raise AwsCallFailed("SSM CancelCommand failed with ThrottlingException: slow down")

    monkeypatch.setattr(SsmGateway, "cancel", refuse)
    reply = call("POST", f"/deployments/{running}/cancel")
    assert reply.status == 502 and reply.error["code"] == "AwsCallFailed"
    assert call("GET", f"/deployments/{running}").body["status"] == "IN_PROGRESS"


def test_unknown_instance_ids_fail_the_deployment_and_free_the_target(aws: World) -> None:
    """Found by the property test: the error came after the lock was taken and left the target locked."""
    reply = call("PUT", "/targets/web", {"instances": {"ids": ["i-0123456789abcdef0"]}, "container": {"name": "web"}})
    assert reply.status == 200
    push_image(aws, "web", "v1")

    first = deploy(image=aws.image_uri("web", "v1"))
    assert first.status == 202 and first.body["status"] == "FAILED" and "i-0123456789abcdef0" in first.body["message"]
    assert call("GET", "/targets/web").body["lock"] is None
    assert deploy(image=aws.image_uri("web", "v1")).status == 202

