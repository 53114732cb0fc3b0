"""Continuation tokens come back inside the next job's event: berth treats them as untrusted input.

A token that names a deployment of another target, or one no pipeline job started, or that berth could not have
written (numbers out of range, floats, 5000-digit integers), gets one clear failure result: never another
deployment's outcome, never "internal error".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.support import TAGS, invoke, jid, results, spec
from tools import local_pipeline

STAGING = {"app": "web", "env": "staging"}

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")


def continued(job: str, params: dict[str, Any], token: str) -> dict[str, Any]:
    """Invoke berth with a continued job carrying `token`; its one result."""
    invoke(pipeline_job_event("codepipeline_job_continuation", job_id=jid(job), user_parameters=json.dumps(params),
                              no_artifacts=True, token=token))
    replies = results(jid(job))
    assert len(replies) == 1, replies
    return replies[0]


def deployed(aws: World) -> str:
    """web-prod deployed through the pipeline, to success; its deployment id."""
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    replies = local_pipeline.run_job(invoke, results, json.dumps(spec()), bucket, key, first_job_id=jid("prod-1"))
    assert replies[-1].kind == "success"
    return str(replies[-1].result["outputVariables"]["deployment_id"])


def test_a_token_naming_another_targets_deployment_fails_and_reports_nothing_of_it(aws: World) -> None:
    prod = deployed(aws)
    aws.launch(1, STAGING)

    reply = continued("staging-2", spec(target="web-staging", instances={"tags": STAGING}),
                      json.dumps({"v": 1, "d": prod}))

    assert reply["type"] == "failure"
    message = reply["failureDetails"]["message"]
    assert prod in message and "'web-prod'" in message and "'web-staging'" in message
    assert "succeeded" not in message
    assert "outputVariables" not in reply


def test_a_token_naming_a_deployment_no_pipeline_started_fails(aws: World) -> None:
    deployed(aws)
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    started = call("POST", "/targets/web-prod/deployments", {"reason": "by hand"})
    assert started.status == 202, started

    reply = continued("prod-forged", spec(), json.dumps({"v": 1, "d": started.body["deployment_id"]}))

    assert reply["type"] == "failure"
    assert "was not started by a pipeline job" in reply["failureDetails"]["message"]


def test_a_token_naming_an_unknown_deployment_fails_naming_it(aws: World) -> None:
    reply = continued("nosuch", spec(), json.dumps({"v": 1, "d": "d-20240101000000-00000000"}))
    assert reply["type"] == "failure"
    assert "d-20240101000000-00000000" in reply["failureDetails"]["message"]


def test_a_lock_wait_token_for_another_target_fails(aws: World) -> None:
    reply = continued("wait-other", spec(), json.dumps({"v": 1, "w": "web-staging", "s": 1_700_000_000}))
    assert reply["type"] == "failure"
    assert "'web-staging'" in reply["failureDetails"]["message"]
    assert aws.client("ssm").list_commands()["Commands"] == []


def test_a_lock_wait_that_starts_in_the_future_fails(aws: World) -> None:
    reply = continued("wait-future", spec(), json.dumps({"v": 1, "w": "web-prod", "s": 2**40}))
    assert reply["type"] == "failure"
    assert "in the future" in reply["failureDetails"]["message"]
    assert aws.client("ssm").list_commands()["Commands"] == []


@pytest.mark.parametrize("token", [
    '{"v":1,"w":"web-prod","s":1e400}',
    '{"v":1,"w":"web-prod","s":' + "9" * 5000 + "}",
    '{"v":1,"w":"web-prod","s":' + "9" * 400 + "}",
    '{"v":1,"d":"d-1","d":"' + "x" * 1000 + '"}',
    '{"v":1,"d":"' + "d" * 1500 + '"}',
    "[" * 2000,
])
def test_a_token_berth_could_not_have_written_is_one_clear_failure(aws: World, token: str) -> None:
    reply = continued("garbage", spec(), token)
    assert reply["type"] == "failure"
    message = reply["failureDetails"]["message"]
    assert "not one berth wrote" in message and "internal error" not in message
    assert aws.client("ssm").list_commands()["Commands"] == []
