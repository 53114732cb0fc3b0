"""The checks before anything is touched, through the pipeline action on the embedded AWS: the image's platforms
against the instances' architecture (ECR BatchGetImage, EC2 DescribeInstances)."""

from __future__ import annotations

import json

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.functional.support import TAGS, jid, spec
from tests.functional.test_pipeline_job import run_job, sent_commands

OK = InstanceOutcome(polls_before_done=1, stdout="berth-step: health\nberth-result: ok")


def test_an_image_without_the_instances_architecture_fails_the_job_before_any_command(aws: World) -> None:
    aws.launch(1, TAGS)
    graviton = aws.launch(2, TAGS, "arm64")
    digest = aws.push_image("web", "v1", platforms=["amd64"])

    replies = run_job(aws, jid("arch-1"), spec(image=aws.image_uri("web", "v1")))

    assert [reply["type"] for reply in replies] == ["failure"]
    message = replies[0]["failureDetails"]["message"]
    assert f"web@{digest} has platforms amd64 but the target's instances include arm64: " in message
    assert all(f"{instance} (arm64)" in message for instance in graviton)
    assert replies[0]["failureDetails"]["type"] == "ConfigurationError"
    assert sent_commands(aws) == []


def test_an_image_for_every_architecture_of_the_fleet_deploys(aws: World) -> None:
    aws.launch(1, TAGS)
    aws.launch(1, TAGS, "arm64")
    aws.push_image("web", "v1", platforms=["amd64", "arm64"])
    localaws.set_default_outcome(OK)

    replies = run_job(aws, jid("arch-2"), spec(image=aws.image_uri("web", "v1")))

    assert [reply["type"] for reply in replies] == ["success"] * len(replies)
    assert "continuationToken" not in replies[-1]
    assert len(sent_commands(aws)) == 1
    assert json.dumps(replies[-1]["outputVariables"]).count("image_digest") == 1
