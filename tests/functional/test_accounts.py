"""Targets in other accounts and regions, on the embedded AWS: moto keys every resource by account and region, and
credentials from its STS AssumeRole act in the role's account, so a command sent with the wrong credentials or in
the wrong region is simply not where these tests read it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from chalice.test import Client

import localaws
from app import app
from localaws import InstanceOutcome
from tests.conftest import ACCOUNT, REGION, World
from tests.functional.support import TAGS, invoke, jid, results, spec
from tools.local_pipeline import job_event

ACCOUNT_A, REGION_A = "210987654321", "eu-west-1"
ACCOUNT_B, REGION_B = "345678901234", "us-west-2"
EXTERNAL_ID = "berth-6a1f0c2d-external"
OK = InstanceOutcome(polls_before_done=1, stdout="berth-step: health\nberth-result: ok")


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/berth-target"


def location(account: str, region: str) -> dict[str, str]:
    return {"role_arn": role_arn(account), "external_id": EXTERNAL_ID, "region": region}


def member(world: World, service: str, account: str, region: str) -> Any:
    """A client acting in a member account, as a person there would see it."""
    answer = world.client("sts").assume_role(RoleArn=role_arn(account), RoleSessionName="test-reader")
    credentials = answer["Credentials"]
    return boto3.client(service, region_name=region, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def launch(world: World, account: str, region: str, count: int, tags: dict[str, str]) -> list[str]:
    from tools import emulated

    return emulated.launch(member(world, "ec2", account, region), count, tags)


def commands(client: Any) -> list[dict[str, Any]]:
    return list(client.list_commands()["Commands"])


def run_interleaved(world: World, jobs: dict[str, dict[str, Any]], max_rounds: int = 10,
                    between_rounds: Callable[[], None] = lambda: None) -> dict[str, list[Any]]:
    """Hand each job to berth as CodePipeline would, one invocation of each in turn until every job is over."""
    bucket, key = world.put_artifact({})
    replies: dict[str, list[Any]] = {name: [] for name in jobs}
    tokens: dict[str, str | None] = {name: None for name in jobs}
    for round_number in range(max_rounds):
        for name, params in jobs.items():
            if replies[name] and "continuationToken" not in replies[name][-1]:
                continue
            event = job_event(json.dumps(params), bucket, key, tokens[name],
                              jid(name) if round_number == 0 else None)
            invoke(event)
            answered = results(event["CodePipeline.job"]["id"])
            assert len(answered) == 1
            replies[name].append(answered[0])
            tokens[name] = answered[0].get("continuationToken")
        if all(reply and "continuationToken" not in reply[-1] for reply in replies.values()):
            return replies
        between_rounds()
    raise AssertionError("the jobs did not finish")


@pytest.fixture
def two_accounts(aws: World) -> dict[str, list[str]]:
    localaws.set_default_outcome(OK)
    aws.push_image("web", "v1")
    return {"a": launch(aws, ACCOUNT_A, REGION_A, 2, TAGS), "b": launch(aws, ACCOUNT_B, REGION_B, 3, TAGS)}


def test_two_targets_in_two_accounts_deploy_at_once_each_command_in_its_own_place(
        aws: World, two_accounts: dict[str, list[str]]) -> None:
    image = aws.image_uri("web", "v1")      # the central registry: berth's own account and region
    jobs = {"job-a": spec(target="web-a", image=image, location=location(ACCOUNT_A, REGION_A)),
            "job-b": spec(target="web-b", image=image, location=location(ACCOUNT_B, REGION_B))}

    replies = run_interleaved(aws, jobs)

    for name in jobs:
        assert [r["type"] for r in replies[name]] == ["success"] * len(replies[name]), replies[name][-1]
        assert len(replies[name]) >= 2         # a continuation at least: the two jobs' invocations interleaved
    ids = {name: replies[name][-1]["outputVariables"]["deployment_id"] for name in jobs}
    in_a = commands(member(aws, "ssm", ACCOUNT_A, REGION_A))
    in_b = commands(member(aws, "ssm", ACCOUNT_B, REGION_B))
    assert [c["Comment"].split()[1] for c in in_a] == [ids["job-a"]]
    assert [c["Comment"].split()[1] for c in in_b] == [ids["job-b"]]
    assert in_a[0]["TargetCount"] == 2 and in_b[0]["TargetCount"] == 3
    # nothing in berth's own account, nor in a member account's other region
    assert commands(aws.client("ssm")) == []
    assert commands(member(aws, "ssm", ACCOUNT_A, REGION_B)) == []
    # the records stay in berth's own account
    from chalicelib.wiring import store
    with Client(app, stage_name="test"):
        a = store().get_deployment(ids["job-a"])
        b = store().get_deployment(ids["job-b"])
    assert a.status.value == "SUCCEEDED" and sorted(a.attempts[0].expected_instances) == two_accounts["a"]
    assert b.status.value == "SUCCEEDED" and sorted(b.attempts[0].expected_instances) == two_accounts["b"]


def test_a_target_without_location_still_deploys_in_berths_own_account(
        aws: World, two_accounts: dict[str, list[str]]) -> None:
    home = aws.launch(2, TAGS)
    replies = run_interleaved(aws, {"job-home": spec(target="web-home", image=aws.image_uri("web", "v1"))})

    assert replies["job-home"][-1]["type"] == "success"
    assert [c["TargetCount"] for c in commands(aws.client("ssm"))] == [len(home)]
    assert commands(member(aws, "ssm", ACCOUNT_A, REGION_A)) == []
    assert ACCOUNT and REGION == "us-east-1"


def test_a_role_that_cannot_be_assumed_fails_the_job_naming_role_and_account_never_the_external_id(
        aws: World, two_accounts: dict[str, list[str]], capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    from tests.reliability.faults import aws_calls

    caplog.set_level("DEBUG")
    params = spec(target="web-a", image=aws.image_uri("web", "v1"), location=location(ACCOUNT_A, REGION_A))
    with aws_calls(fail_at=0, fault="AccessDenied", only=frozenset({"sts"})) as sts:
        replies = run_interleaved(aws, {"job-denied": params})

    assert sts.calls == ["sts.AssumeRole"]           # refused once, and not asked again: nothing a retry changes
    assert sts.params[0]["RoleArn"] == role_arn(ACCOUNT_A) and sts.params[0]["ExternalId"] == EXTERNAL_ID
    assert sts.params[0]["RoleSessionName"].startswith("berth-d-") and 900 <= sts.params[0]["DurationSeconds"]
    final = replies["job-denied"][-1]
    assert final["type"] == "failure"
    message = final["failureDetails"]["message"]
    assert role_arn(ACCOUNT_A) in message and f"account {ACCOUNT_A}" in message and "AccessDenied" in message
    assert commands(member(aws, "ssm", ACCOUNT_A, REGION_A)) == []
    printed = capsys.readouterr()
    everything = json.dumps(replies) + printed.out + printed.err + caplog.text
    assert role_arn(ACCOUNT_A) in everything          # the grep below reads what was printed and logged
    assert EXTERNAL_ID not in everything
    # the target is free again: the deployment failed and released it
    from chalicelib.wiring import store
    with Client(app, stage_name="test"):
        assert store().get_lock("web-a") is None


def test_sts_throttling_is_transient_the_job_goes_on_and_deploys(
        aws: World, two_accounts: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.reliability.faults import Clock, aws_calls

    clock = Clock(monkeypatch)
    params = spec(target="web-a", image=aws.image_uri("web", "v1"), location=location(ACCOUNT_A, REGION_A))
    with aws_calls(fail_at=0, fault="Throttling", only=frozenset({"sts"})) as sts:
        replies = run_interleaved(aws, {"job-throttled": params}, between_rounds=lambda: clock.advance(60))

    assert sts.calls[:2] == ["sts.AssumeRole", "sts.AssumeRole"]
    assert replies["job-throttled"][-1]["type"] == "success", replies["job-throttled"][-1]
    assert len(commands(member(aws, "ssm", ACCOUNT_A, REGION_A))) == 1


# events from member accounts ---------------------------------------------------------------------------------------
STRANGER = "999999999999"
MANAGED = {**TAGS, "berth:managed": "true"}


@pytest.fixture
def home_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_ACCOUNT_ID", ACCOUNT)


def command_event(command_id: str, account: str, region: str, status: str = "Success") -> dict[str, Any]:
    from tests.events import load_event

    event = load_event("ssm_command_success")
    event.update({"account": account, "region": region})
    event["detail"].update({"command-id": command_id, "status": status, "document-name": "AWS-RunShellScript"})
    return event


def running_event(instance_id: str, account: str, region: str) -> dict[str, Any]:
    from tests.events import load_event

    event = load_event("ec2_instance_running")
    event.update({"account": account, "region": region,
                  "resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"]})
    event["detail"]["instance-id"] = instance_id
    return event


def record(deployment_id: str) -> Any:
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)


def started(world: World, jobs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each job's first invocation only: its deployment is sent and waits; the deployment ids."""
    bucket, key = world.put_artifact({})
    ids = {}
    for name, params in jobs.items():
        invoke(job_event(json.dumps(params), bucket, key, None, jid(name)))
        reply = results(jid(name))[0]
        assert "continuationToken" in reply, reply
        ids[name] = reply["executionDetails"]["externalExecutionId"]
    return ids


def test_ssm_events_from_each_account_are_followed_and_a_strangers_are_ignored(
        aws: World, two_accounts: dict[str, list[str]], home_account: None) -> None:
    from tests.functional.support import deliver
    from tests.reliability.faults import aws_calls

    image = aws.image_uri("web", "v1")
    ids = started(aws, {"ev-a": spec(target="web-a", image=image, location=location(ACCOUNT_A, REGION_A)),
                        "ev-b": spec(target="web-b", image=image, location=location(ACCOUNT_B, REGION_B))})
    command_a = commands(member(aws, "ssm", ACCOUNT_A, REGION_A))[0]["CommandId"]
    command_b = commands(member(aws, "ssm", ACCOUNT_B, REGION_B))[0]["CommandId"]
    before = record(ids["ev-a"])

    # A's command reported from an account berth does not know, and from B's account: nothing is read or written
    for account, region in ((STRANGER, REGION_A), (ACCOUNT_B, REGION_B), (ACCOUNT_A, REGION_B)):
        with aws_calls() as calls:
            answer = deliver(command_event(command_a, account, region))
        assert answer["action"] == "ignored", answer
        assert not [c for c in calls.calls if not c.startswith("dynamodb.")], calls.calls
        assert not [c for c in calls.calls if c.split(".")[1] not in ("GetItem", "Query")], calls.calls
    assert record(ids["ev-a"]).version == before.version

    # from where each target lives: followed to the end (the first read finds the command still running)
    for command_id, account, region in ((command_a, ACCOUNT_A, REGION_A), (command_b, ACCOUNT_B, REGION_B)):
        for _ in range(3):
            assert deliver(command_event(command_id, account, region))["action"] == "recorded"
    assert record(ids["ev-a"]).status.value == "SUCCEEDED"
    assert record(ids["ev-b"]).status.value == "SUCCEEDED"


def test_a_located_targets_new_instance_joins_through_events_from_its_account(
        aws: World, two_accounts: dict[str, list[str]], home_account: None) -> None:
    from tests.functional.support import deliver
    from tests.reliability.faults import aws_calls

    target_a = spec(target="web-a", image=aws.image_uri("web", "v1"), instances={"tags": MANAGED},
                    location=location(ACCOUNT_A, REGION_A))
    launch(aws, ACCOUNT_A, REGION_A, 1, MANAGED)
    replies = run_interleaved(aws, {"join-first": target_a})
    assert replies["join-first"][-1]["type"] == "success"
    ssm_a = member(aws, "ssm", ACCOUNT_A, REGION_A)
    digest = record(replies["join-first"][-1]["outputVariables"]["deployment_id"]).revision.digest
    new = launch(aws, ACCOUNT_A, REGION_A, 1, MANAGED)[0]

    # the same instance announced from an account (or region) where no target lives: ignored before any EC2 call
    for account, region in ((STRANGER, REGION_A), (ACCOUNT_A, "ap-south-1")):
        with aws_calls() as calls:
            answer = invoke(running_event(new, account, region), "instance_launches")
        assert answer["action"] == "ignored", answer
        assert [c for c in calls.calls if not c.startswith("dynamodb.")] == [], calls.calls

    answer = invoke(running_event(new, ACCOUNT_A, REGION_A), "instance_launches")

    assert answer["action"] == "deploying", answer
    sent = [c for c in commands(ssm_a) if c.get("InstanceIds") == [new]]
    assert len(sent) == 1 and str(digest) in "\n".join(sent[0]["Parameters"]["commands"])
    assert commands(aws.client("ssm")) == []
    for command in commands(ssm_a):
        for _ in range(2):
            deliver(command_event(command["CommandId"], ACCOUNT_A, REGION_A))
    from chalicelib.wiring import store
    with Client(app, stage_name="test"):
        join = store().get_join(new)
    assert join is not None and join.target == "web-a" and join.location is not None
    assert join.location.account == ACCOUNT_A
    assert record(join.deployment_id).status.value == "SUCCEEDED"
