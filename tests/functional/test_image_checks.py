"""The checks before anything is touched, through the pipeline action on the embedded AWS: the image's platforms
against the instances' architecture (ECR BatchGetImage, EC2 DescribeInstances), the scan gate (ECR
DescribeImageScanFindings, set by localaws), and the disk remediation (exit NO_SPACE: the instances pruned, berth
retries once)."""

from __future__ import annotations

import json

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deploy, register
from tests.conftest import World
from tests.functional.support import TAGS, deliver, invoke, jid, results, spec
from tests.functional.test_pipeline_job import run_job, sent_commands
from tests.functional.test_retries import command_event, fire, start, store_deployment
from tools import local_pipeline

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
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


def test_scan_findings_at_the_policys_severity_fail_the_job_naming_the_counts(aws: World) -> None:
    aws.launch(1, TAGS)
    digest = aws.push_image("web", "v1")
    localaws.set_scan_findings("web", digest, "COMPLETE", {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 7})

    replies = run_job(aws, jid("scan-1"), spec(image=aws.image_uri("web", "v1"),
                                               image_policy={"max_severity": "HIGH"}))

    assert [reply["type"] for reply in replies] == ["failure"]
    message = replies[0]["failureDetails"]["message"]
    assert (f"web@{digest} has scan findings at or above HIGH (image_policy.max_severity): 1 CRITICAL, 2 HIGH."
            in message)
    assert "MEDIUM" not in message
    assert sent_commands(aws) == []


def test_a_scan_in_progress_is_waited_for_through_continuations_then_deploys(aws: World) -> None:
    aws.launch(1, TAGS)
    digest = aws.push_image("web", "v1")
    localaws.set_scan_findings("web", digest, "IN_PROGRESS")
    localaws.set_default_outcome(OK)
    rounds: list[str] = []

    def scan_completes() -> None:
        rounds.append("waited")
        if len(rounds) == 2:
            localaws.set_scan_findings("web", digest, "COMPLETE", {"MEDIUM": 3, "UNDEFINED": 1})

    bucket, key = aws.put_artifact({})
    replies = [reply.result for reply in local_pipeline.run_job(
        invoke, results, json.dumps(spec(image=aws.image_uri("web", "v1"), image_policy={"max_severity": "HIGH"})),
        bucket, key, max_rounds=10, first_job_id=jid("scan-2"), between_rounds=scan_completes)]

    assert [reply["type"] for reply in replies] == ["success"] * len(replies)
    assert [reply["executionDetails"]["summary"] for reply in replies[:2]] == [
        f"waiting: image {aws.image_uri('web', 'v1').rsplit(':', 1)[0]}@{digest}: its scan is IN_PROGRESS; "
        "image_policy.max_severity needs it complete"] * 2
    assert "continuationToken" not in replies[-1] and replies[-1]["outputVariables"]["image_digest"] == digest
    assert len(sent_commands(aws)) == 1


def test_an_image_never_scanned_is_refused_under_a_policy(aws: World) -> None:
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")

    replies = run_job(aws, jid("scan-3"), spec(image=aws.image_uri("web", "v1"),
                                               image_policy={"max_severity": "CRITICAL"}))

    assert [reply["type"] for reply in replies] == ["failure"]
    assert "ECR holds no scan of it" in replies[0]["failureDetails"]["message"]
    assert sent_commands(aws) == []


def test_over_rest_the_checks_are_409s_naming_the_image_and_the_plan_lists_them(aws: World) -> None:
    register(aws, instances=0, image_policy={"max_severity": "CRITICAL"})
    graviton = aws.launch(1, TAGS, "arm64")
    digest = aws.push_image("web", "v1", platforms=["amd64"])
    localaws.set_scan_findings("web", digest, "COMPLETE", {"CRITICAL": 4})
    image = aws.image_uri("web", "v1")

    refused = deploy(image=image)
    assert refused.status == 409 and refused.error["code"] == "ArchitectureMismatch", refused
    assert refused.error["field"] == "image" and f"{graviton[0]} (arm64)" in refused.error["message"]
    plan = call("POST", "/targets/web/plan", {"image": image})
    assert plan.status == 200 and plan.body["revision"] is None
    assert {r["code"] for r in plan.body["refusals"]} == {"ArchitectureMismatch"}

    fits = aws.push_image("web", "v2", platforms=["amd64", "arm64"])
    localaws.set_scan_findings("web", fits, "COMPLETE", {"CRITICAL": 4, "HIGH": 1})
    refused = deploy(image=aws.image_uri("web", "v2"))
    assert refused.status == 409 and refused.error["code"] == "ScanFindings", refused
    assert "4 CRITICAL." in refused.error["message"]
    plan = call("POST", "/targets/web/plan", {"image": aws.image_uri("web", "v2")})
    assert [(r["code"], "4 CRITICAL" in r["message"]) for r in plan.body["refusals"]] == [("ScanFindings", True)]
    localaws.set_scan_findings("web", fits, "IN_PROGRESS")
    pending = deploy(image=aws.image_uri("web", "v2"))
    assert pending.status == 409 and pending.error["code"] == "ScanPending"
    assert aws.client("ssm").list_commands()["Commands"] == []


NO_SPACE = InstanceOutcome(status="Failed", response_code=25, stdout=(
    "berth-step: pull\npruned image 4f1c, which web ran before\nberth-error: 25 NO_SPACE\n"), stderr=(
    "error: no space left on device: could not pull the image. Pruned older images of web; the retry may fit"))


def test_out_of_disk_is_remediated_by_the_prune_and_retried_once_then_it_succeeds(aws: World) -> None:
    instances = aws.launch(2, TAGS)
    localaws.set_outcome(instances[0], NO_SPACE)
    deployment_id = start(aws, "disk-1", container={"name": "web", "ports": ["5000:5000"], "keep_images": 2})
    first = store_deployment(deployment_id).attempts[0].command_id
    script = "\n".join(aws.client("ssm").list_commands(CommandId=first)["Commands"][0]["Parameters"]["commands"])
    assert "--keep-images 2" in script

    deliver(command_event(str(first)))

    record = store_deployment(deployment_id)
    assert record.status.value == "RETRYING"
    assert "remediable" in record.history[-1].cause and "exit 25" in record.history[-1].cause
    assert "no space left on device: the instances pruned" in record.history[-1].detail
    localaws.set_outcome(instances[0], InstanceOutcome())
    assert len(fire(aws)) == 1
    retried = store_deployment(deployment_id)
    deliver(command_event(str(retried.attempts[1].command_id), "Success"))
    assert store_deployment(deployment_id).status.value == "SUCCEEDED"


def test_a_disk_still_full_after_the_one_retry_fails_for_good(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], NO_SPACE)
    deployment_id = start(aws, "disk-2", retry={"max_attempts": 5, "base_seconds": 1, "cap_seconds": 5})

    deliver(command_event(str(store_deployment(deployment_id).attempts[0].command_id)))
    assert len(fire(aws)) == 1
    deliver(command_event(str(store_deployment(deployment_id).attempts[1].command_id)))

    record = store_deployment(deployment_id)
    assert record.status.value == "FAILED" and len(record.attempts) == 2
    assert "the failure is permanent" in record.message and "exit 25" in record.message
    assert fire(aws) == []
