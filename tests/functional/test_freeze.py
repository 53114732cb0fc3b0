"""A target's freeze through the REST API, the CLI and the pipeline action, and a scheduled retry held through one,
on moto and localaws."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deploy, deployed, identity, push_image, register, settle
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.cli_front import Front, berth
from tests.functional.support import TAGS, deliver, invoke, jid, results, spec
from tests.functional.test_retries import command_event, fire, start, store_deployment
from tests.reliability.faults import Clock
from tools.local_scheduler import pending

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
BOB = "arn:aws:iam::123456789012:user/bob"


def test_rest_deploys_are_refused_while_frozen_unless_overridden(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    deployed(aws)
    push_image(aws, "web", "v2")
    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    with identity(monkeypatch, user_arn=BOB):
        frozen = call("POST", "/targets/web/freeze", {"reason": "release week", "until": until.isoformat()})
    assert frozen.status == 200
    assert frozen.body["freeze"] == {"reason": "release week", "by": BOB, "at": frozen.body["freeze"]["at"],
                                     "until": until.isoformat().replace("+00:00", "Z"), "in_force": True}
    assert call("GET", "/targets/web").body["freeze"]["reason"] == "release week"

    for refused in (deploy(image=aws.image_uri("web", "v2")), call("POST", "/targets/web/rollback"),
                    call("POST", "/targets/web/sync")):
        assert refused.status == 409 and refused.error["code"] == "TargetFrozen", refused
        assert "release week" in refused.error["message"] and BOB in refused.error["message"]
        assert "override_freeze" in refused.error["message"]

    overridden = deploy(image=aws.image_uri("web", "v2"), override_freeze="INC-7 hotfix")
    assert overridden.status == 202
    note = next(d for d in overridden.body["history"] if d["action"] == "freeze-overridden")
    assert "INC-7 hotfix" in note["detail"] and "release week" in note["detail"]
    assert settle(overridden.body["deployment_id"])["status"] == "SUCCEEDED"

    lifted = call("POST", "/targets/web/unfreeze")
    assert lifted.status == 200 and lifted.body["freeze"] is None
    assert call("POST", "/targets/web/rollback").status == 202


@pytest.mark.parametrize("body, field", [
    ({}, "reason"), ({"reason": ""}, "reason"), ({"reason": "x" * 501}, "reason"),
    ({"reason": "x", "until": "2026-12-01T09:00:00"}, "until"), ({"reason": "x", "until": "tomorrow"}, "until"),
    ({"reason": "x", "until": "2001-01-01T00:00:00Z"}, "until"), ({"reason": "x", "extra": 1}, "extra"),
    ({"reason": "x", "until": "9999-12-31T23:59:59Z"}, "until"),
    ({"reason": "x", "until": "0001-01-01T00:00:00+23:59"}, "until")])
def test_a_freeze_request_is_checked_at_the_edge(aws: World, body: dict[str, object], field: str) -> None:
    register(aws, instances=0)
    reply = call("POST", "/targets/web/freeze", body)
    assert reply.status == 400 and reply.error["field"] == field, reply
    assert call("POST", "/targets/nobody/freeze", {"reason": "x"}).status == 404
    assert call("POST", "/targets/nobody/unfreeze").status == 404


def test_the_cli_freezes_shows_refuses_overrides_and_unfreezes(front: Front) -> None:
    deployed(front.world)
    code, out, err = berth(front, "freeze", "web", "--reason", "release week", "--until", "30m")
    assert code == 0 and "FROZEN until " in out and "release week" in out, err
    code, out, _ = berth(front, "status", "web")
    assert code == 0 and re.search(r"^freeze\s+FROZEN until \S+ by .*: release week$", out, re.M), out

    code, _, err = berth(front, "deploy", "web")
    assert code == 1 and "is frozen" in err and "release week" in err
    code, out, err = berth(front, "deploy", "web", "--override-freeze", "INC-7")
    assert code == 0 and "started" in out, err

    code, out, _ = berth(front, "unfreeze", "web")
    assert code == 0 and out.strip() == "target web unfrozen"
    assert "freeze      none" in berth(front, "status", "web")[1]
    code, _, err = berth(front, "freeze", "web", "--reason", "x", "--until", "next week")
    assert code == 1 and "--until 'next week'" in err


def test_a_pipeline_job_waits_through_a_freeze_then_fails_naming_it(aws: World,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")
    params = json.dumps(spec(image=aws.image_uri("web", "v1")))
    register_reply = call("PUT", "/targets/web-prod", spec())
    assert register_reply.status == 200
    with identity(monkeypatch, user_arn=BOB):
        assert call("POST", "/targets/web-prod/freeze", {"reason": "release week"}).status == 200

    invoke(pipeline_job_event(job_id=jid("frozen-1"), user_parameters=params, no_artifacts=True))
    waiting = results(jid("frozen-1"))[0]
    assert waiting["type"] == "success" and "continuationToken" in waiting
    assert "waiting: target 'web-prod' is frozen until unfrozen by " + BOB in waiting["executionDetails"]["summary"]
    assert aws.client("ssm").list_commands()["Commands"] == []

    clock.advance(61 * 60)
    invoke(pipeline_job_event("codepipeline_job_continuation", job_id=jid("frozen-2"), user_parameters=params,
                              token=waiting["continuationToken"], no_artifacts=True))
    failed = results(jid("frozen-2"))[0]
    assert failed["type"] == "failure"
    message = failed["failureDetails"]["message"]
    assert "frozen" in message and "release week" in message and BOB in message and "waited 61 minutes" in message


def test_a_pipeline_job_that_waited_deploys_once_the_freeze_is_lifted(aws: World,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    Clock(monkeypatch)
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")
    params = json.dumps(spec(image=aws.image_uri("web", "v1")))
    call("PUT", "/targets/web-prod", spec())
    call("POST", "/targets/web-prod/freeze", {"reason": "release week"})
    invoke(pipeline_job_event(job_id=jid("thaw-1"), user_parameters=params, no_artifacts=True))
    token = results(jid("thaw-1"))[0]["continuationToken"]

    call("POST", "/targets/web-prod/unfreeze")
    invoke(pipeline_job_event("codepipeline_job_continuation", job_id=jid("thaw-2"), user_parameters=params,
                              token=token, no_artifacts=True))
    reply = results(jid("thaw-2"))[0]
    assert reply["type"] == "success" and "sent to target web-prod" in reply["executionDetails"]["summary"]
    assert len(aws.client("ssm").list_commands()["Commands"]) == 1


def test_a_scheduled_retry_is_held_through_a_freeze_not_lost(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21, stdout="berth-step: pull\n",
                                                       stderr="net/http: TLS handshake timeout"))
    deployment_id = start(aws, "held-retry")
    deliver(command_event(str(store_deployment(deployment_id).attempts[0].command_id)))
    assert store_deployment(deployment_id).status.value == "RETRYING"
    assert call("POST", "/targets/web-prod/freeze", {"reason": "release week"}).status == 200

    fire(aws)

    held = store_deployment(deployment_id)
    assert held.status.value == "RETRYING" and len(held.attempts) == 1
    assert held.history[-1].action == "retry-held" and "frozen" in held.history[-1].detail
    [(name, payload)] = pending(aws.client("scheduler"))
    assert payload == {"kind": "ssm", "deployment_id": deployment_id, "attempt": 2} and name.startswith("berth-retry-")
    lock = call("GET", "/targets/web-prod").body["lock"]
    assert lock is not None and lock["deployment_id"] == deployment_id

    call("POST", "/targets/web-prod/unfreeze")
    localaws.set_outcome(instances[0], InstanceOutcome())
    assert fire(aws) == [name]
    retried = store_deployment(deployment_id)
    assert len(retried.attempts) == 2 and retried.status.value == "IN_PROGRESS"
