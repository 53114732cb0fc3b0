"""CodeDeploy EC2 deployments followed through EventBridge: recorded, diagnosed, remediated and retried once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import localaws
from app import app
from chalicelib.domain.deployment import CodeDeployRecord
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import load_event
from tests.functional.support import deliver, invoke, spec
from tools.local_scheduler import fire_all, pending

APP, GROUP = "myApplication", "myDeploymentGroup"
REVISION = {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "web.zip", "bundleType": "zip"}}
DOCKER_MISSING = {
    "status": "Failed", "lifecycle_event": "ApplicationStart", "script_name": "scripts/start_container.sh",
    "error_code": "ScriptFailed",
    "message": "Script at specified location: scripts/start_container.sh run as user root failed with exit code 127",
    "log_tail": "[stderr]scripts/start_container.sh: line 12: docker: command not found",
}


def group(aws: World, tags: dict[str, str]) -> None:
    codedeploy = aws.client("codedeploy")
    codedeploy.create_application(applicationName=APP, computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName=APP, deploymentGroupName=GROUP, serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        ec2TagFilters=[{"Key": k, "Value": v, "Type": "KEY_AND_VALUE"} for k, v in tags.items()])


def create(aws: World) -> str:
    return str(aws.client("codedeploy").create_deployment(
        applicationName=APP, deploymentGroupName=GROUP, revision=REVISION)["deploymentId"])


def state_event(deployment_id: str, state: str, event_id: str = "", instance: str | None = None) -> dict[str, Any]:
    event = load_event("codedeploy_instance_failure" if instance else "codedeploy_deployment_failure")
    event["detail"].update({"deploymentId": deployment_id, "state": state})
    if instance:
        event["detail"]["instanceId"] = instance
    event["id"] = event_id or f"{deployment_id}-{state}-{instance or 'deployment'}"
    return event


def record(deployment_id: str) -> CodeDeployRecord:
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        found = store().get_codedeploy(deployment_id)
    assert found is not None
    return found


def fire(aws: World) -> list[str]:
    return fire_all(aws.client("scheduler"), lambda payload: invoke(payload, "retry_deployment"))


def test_every_state_is_recorded(aws: World) -> None:
    instances = aws.launch(2, {"app": "web"})
    group(aws, {"app": "web"})
    deployment_id = create(aws)
    for event in [state_event(deployment_id, "START"), state_event(deployment_id, "SUCCESS", instance=instances[0]),
                  state_event(deployment_id, "SUCCESS", instance=instances[1]), state_event(deployment_id, "SUCCESS")]:
        deliver(event)
    followed = record(deployment_id)
    assert followed.state == "SUCCESS"
    assert followed.instances == {instances[0]: "SUCCESS", instances[1]: "SUCCESS"}
    assert [d.action for d in followed.history] == ["state-start", "state-success", "state-success", "state-success"]


@pytest.mark.slow
def test_a_fleet_of_1500_instances_keeps_the_record_bounded_and_its_failure_acted_on(
        aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every instance reports START and then SUCCESS or FAILURE; the record keeps counts, the first instances and the
    first failed ones, so the deployment's FAILURE that comes after 3000 instance events is still recorded and acted
    on. (Kept whole, the record passed DynamoDB's 400 KB at about 1100 instances.)"""
    from chalicelib.domain.events import CodeDeployEvent, parse_event
    from chalicelib.wiring import codedeploy_recorder

    instances = aws.launch(2, {"app": "web"})
    group(aws, {"app": "web"})
    deployment_id = create(aws)
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={instances[0]: DOCKER_MISSING})
    fleet = [f"i-{n:017x}" for n in range(1500)]
    deliver(state_event(deployment_id, "START"))
    monkeypatch.setenv("BERTH_CODEDEPLOY_GROUPS", f"{APP}/{GROUP}")
    follower = codedeploy_recorder()            # the bulk of the events straight to the service: same store, faster
    for n, instance in enumerate(fleet):
        for state in ("START", "FAILURE" if n % 15 == 0 else "SUCCESS"):
            event = parse_event(CodeDeployEvent, state_event(deployment_id, state, instance=instance))
            assert follower.on_event(event).action == "recorded"

    answer = deliver(state_event(deployment_id, "FAILURE"))

    assert answer["action"] == "retry-scheduled"
    followed = record(deployment_id)
    assert followed.state == "FAILURE" and followed.decided
    assert followed.instance_events == {"START": 1500, "SUCCESS": 1400, "FAILURE": 100}
    assert len(followed.instances) == 100 and followed.instances[fleet[0]] == "FAILURE"
    assert followed.failed_instances == [fleet[n] for n in range(0, 750, 15)]      # the first 50 that failed
    assert sum(1 for d in followed.history if d.detail.startswith("instance ")) == 50
    assert followed.history[-1].action == "retry-scheduled"
    assert len(pending(aws.client("scheduler"))) == 1
    item = aws.client("dynamodb").get_item(TableName="berth-test", Key={
        "pk": {"S": f"CODEDEPLOY#{deployment_id}"}, "sk": {"S": "RECORD"}})["Item"]
    assert len(item["body"]["S"].encode()) < 64 * 1024


def test_docker_missing_is_remediated_then_the_revision_redeployed_once(aws: World) -> None:
    instances = aws.launch(2, {"app": "web"})
    group(aws, {"app": "web"})
    deployment_id = create(aws)
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={instances[0]: DOCKER_MISSING})
    failure = state_event(deployment_id, "FAILURE")

    for _ in range(5):
        deliver(failure)
        deliver(state_event(deployment_id, "FAILURE", event_id="another-delivery-id"))

    followed = record(deployment_id)
    assert followed.decided and [d.action for d in followed.history].count("retry-scheduled") == 1
    scheduled = next(d for d in followed.history if d.action == "retry-scheduled")
    assert "remediable" in scheduled.cause and "docker: command not found" in scheduled.cause
    assert len(followed.remediation_commands) == 1
    remediation = aws.client("ssm").list_commands(CommandId=followed.remediation_commands[0])["Commands"][0]
    assert remediation["InstanceIds"] == [instances[0]]
    script = "\n".join(remediation["Parameters"]["commands"])
    assert "install_docker.sh" in script and "start_container.sh" not in script
    assert len(pending(aws.client("scheduler"))) == 1

    assert len(fire(aws)) == 1
    retried = record(deployment_id).retried_as
    assert retried and retried != deployment_id
    info = aws.client("codedeploy").get_deployment(deploymentId=retried)["deploymentInfo"]
    assert info["revision"] == REVISION and info["description"] == f"berth retry 2 of {deployment_id}"
    assert record(retried).lineage == deployment_id and record(retried).attempt == 2
    assert fire(aws) == []
    invoke({"kind": "codedeploy", "deployment_id": deployment_id, "attempt": 2}, "retry_deployment")
    deployments = aws.client("codedeploy").list_deployments(applicationName=APP, deploymentGroupName=GROUP)
    assert len(deployments["deployments"]) == 2


def test_retry_of_a_retry_counts_along_the_lineage_and_stops_at_the_budget(aws: World) -> None:
    instances = aws.launch(1, {"app": "web"})
    group(aws, {"app": "web"})
    transient = {**DOCKER_MISSING, "log_tail": "Error response from daemon: net/http: TLS handshake timeout",
                 "error_code": "ScriptFailed"}
    localaws.set_default_outcome(InstanceOutcome())
    current = create(aws)
    lineage = current
    for attempt in (1, 2, 3):
        localaws.set_deployment_outcome(current, "Failed", instances={instances[0]: transient})
        deliver(state_event(current, "FAILURE"))
        if attempt < 3:
            fire(aws)
            current = str(record(current).retried_as)
    last = record(current)
    assert last.lineage == lineage and last.attempt == 3
    assert last.history[-1].action == "gave-up" and "retry budget spent" in last.history[-1].detail


@pytest.mark.parametrize("creator", ["codeDeployRollback"])
def test_a_rollback_deployment_failing_is_never_retried(aws: World, creator: str) -> None:
    instances = aws.launch(1, {"app": "web"})
    group(aws, {"app": "web"})
    deployment_id = create(aws)
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={instances[0]: DOCKER_MISSING}, creator=creator)
    deliver(state_event(deployment_id, "FAILURE"))
    followed = record(deployment_id)
    assert followed.history[-1].action == "gave-up" and "rollback" in followed.history[-1].detail
    assert pending(aws.client("scheduler")) == [] and followed.remediation_commands == []


def test_groups_berth_does_not_manage_are_ignored(aws: World) -> None:
    event = state_event("d-OTHER0001", "FAILURE")
    event["detail"]["deploymentGroup"] = "someone-elses-group"
    assert invoke(event, "codedeploy_events")["action"] == "ignored"


def test_a_target_names_its_group(aws: World) -> None:
    from chalicelib.domain.spec import TargetSpec
    from chalicelib.wiring import store

    instances = aws.launch(1, {"app": "api"})
    codedeploy = aws.client("codedeploy")
    codedeploy.create_application(applicationName="api", computePlatform="Server")
    codedeploy.create_deployment_group(applicationName="api", deploymentGroupName="api-prod",
                                       serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
                                       ec2TagFilters=[{"Key": "app", "Value": "api", "Type": "KEY_AND_VALUE"}])
    with Client(app, stage_name="test"):
        store().put_target(TargetSpec.model_validate(spec(
            target="api-prod", instances={"tags": {"app": "api"}},
            codedeploy={"application": "api", "deployment_group": "api-prod"})), "test")
    deployment_id = str(codedeploy.create_deployment(applicationName="api", deploymentGroupName="api-prod",
                                                     revision=REVISION)["deploymentId"])
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={instances[0]: DOCKER_MISSING})
    event = state_event(deployment_id, "FAILURE")
    event["detail"].update({"application": "api", "deploymentGroup": "api-prod"})
    assert invoke(event, "codedeploy_events")["action"] == "retry-scheduled"
    assert record(deployment_id).target == "api-prod"


def test_malformed_event_is_refused_with_a_clear_error(aws: World) -> None:
    event = load_event("codedeploy_deployment_failure")
    del event["detail"]["deploymentId"]
    with pytest.raises(Exception, match=r"detail\.deploymentId"):
        invoke(event, "codedeploy_events")


def test_pipeline_stage_retry_for_opted_in_pipelines(aws: World) -> None:
    event = load_event("codepipeline_action_failed")
    for _ in range(3):
        deliver(event)
    schedules = pending(aws.client("scheduler"))
    assert len(schedules) == 1
    payload = schedules[0][1]
    assert payload == {"kind": "pipeline", "pipeline": "myPipeline", "stage": "Prod",
                       "execution_id": event["detail"]["execution-id"], "attempt": 1}
    other = json.loads(json.dumps(event))
    other["detail"]["pipeline"] = "notOptedIn"
    other["id"] = "another"
    assert invoke(other, "pipeline_action_failed")["action"] == "ignored"


def create_pipeline(aws: World, name: str = "myPipeline") -> None:
    aws.client("iam").create_role(RoleName="codepipeline", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "codepipeline.amazonaws.com"}}]}))
    action = {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}
    aws.client("codepipeline").create_pipeline(pipeline={
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/codepipeline",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "actionTypeId": action, "outputArtifacts": [
                {"name": "src"}], "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}}]},
            {"name": "Prod", "actions": [{"name": "Deploy", "actionTypeId": {
                "category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                "configuration": {"FunctionName": "berth-dev-pipeline_job"}, "inputArtifacts": [{"name": "src"}]}]},
        ]})


def test_pipeline_stage_retry_is_carried_out_once_per_failure_and_bounded(aws: World) -> None:
    create_pipeline(aws)
    event = load_event("codepipeline_action_failed")
    for attempt in (1, 2, 3):
        event["id"] = f"failed-{attempt}"
        deliver(event)
        deliver(event)            # a duplicate delivery of the same failure
        assert len(fire(aws)) == 1
        retries = localaws.stage_retries()
        assert len(retries) == attempt
        assert retries[-1] == {"pipelineName": "myPipeline", "stageName": "Prod", "retryMode": "FAILED_ACTIONS",
                               "pipelineExecutionId": event["detail"]["execution-id"]}
    event["id"] = "failed-4"
    assert invoke(event, "pipeline_action_failed")["action"] == "gave-up"
    assert fire(aws) == [] and len(localaws.stage_retries()) == 3


def test_pipeline_stage_retry_for_a_deleted_pipeline_gives_up_clearly(aws: World) -> None:
    deliver(load_event("codepipeline_action_failed"))
    ((_name, payload),) = pending(aws.client("scheduler"))
    answer = invoke(payload, "retry_deployment")
    assert answer == {"action": "gave-up", "detail": "CodePipeline refused the retry: PipelineNotFoundException"}
    assert localaws.stage_retries() == []


# Superseded retries (issue 12, defect 1) ---------------------------------------------------------------------------
NEWER_REVISION = {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "web-2.zip", "bundleType": "zip"}}
TRANSIENT = {**DOCKER_MISSING, "log_tail": "Error response from daemon: net/http: TLS handshake timeout"}


def test_a_retry_gives_up_when_the_group_had_a_newer_deployment(aws: World) -> None:
    """D1 fails transiently and a retry is scheduled; D2 of a newer revision then succeeds. When the schedule
    fires, redeploying D1's revision would undo D2: the retry gives up and says why."""
    instances = aws.launch(1, {"app": "web"})
    group(aws, {"app": "web"})
    failed = create(aws)
    localaws.set_deployment_outcome(failed, "Failed", instances={instances[0]: TRANSIENT})
    deliver(state_event(failed, "FAILURE"))
    assert record(failed).history[-1].action == "retry-scheduled"

    newer = str(aws.client("codedeploy").create_deployment(
        applicationName=APP, deploymentGroupName=GROUP, revision=NEWER_REVISION)["deploymentId"])
    localaws.set_deployment_outcome(newer, "Succeeded")
    deliver(state_event(newer, "SUCCESS"))

    assert len(fire(aws)) == 1
    followed = record(failed)
    assert followed.retried_as is None
    assert followed.history[-1].action == "gave-up" and newer in followed.history[-1].detail
    listed = aws.client("codedeploy").list_deployments(applicationName=APP, deploymentGroupName=GROUP)
    assert sorted(listed["deployments"]) == sorted([failed, newer])
    # Scheduler delivers at least once: the same schedule again changes nothing.
    assert invoke({"kind": "codedeploy", "deployment_id": failed, "attempt": 2}, "retry_deployment")["action"] == \
        "duplicate"
    assert [d.action for d in record(failed).history].count("gave-up") == 1


def test_a_retry_gives_up_when_berth_deployed_its_target_since(aws: World) -> None:
    """The group belongs to a target that berth deployed through SSM after the failure: that is newer too."""
    from chalicelib.domain.spec import TargetSpec
    from chalicelib.wiring import deployment_service, store

    instances = aws.launch(1, {"app": "web"})
    group(aws, {"app": "web"})
    target = TargetSpec.model_validate(spec(target="web-cd", instances={"tags": {"app": "web"}},
                                            codedeploy={"application": APP, "deployment_group": GROUP}))
    with Client(app, stage_name="test"):
        store().put_target(target, "test")
    failed = create(aws)
    localaws.set_deployment_outcome(failed, "Failed", instances={instances[0]: TRANSIENT})
    deliver(state_event(failed, "FAILURE"))
    assert record(failed).history[-1].action == "retry-scheduled"

    aws.push_image("web", "v2")
    with Client(app, stage_name="test"):
        service = deployment_service()
        started = service.start(target, service.resolve_revision(target, aws.image_uri("web", "v2")), "api",
                                "arn:aws:iam::123456789012:user/alice")

    assert len(fire(aws)) == 1
    followed = record(failed)
    assert followed.retried_as is None
    assert followed.history[-1].action == "gave-up" and started.deployment_id in followed.history[-1].detail
    listed = aws.client("codedeploy").list_deployments(applicationName=APP, deploymentGroupName=GROUP)
    assert listed["deployments"] == [failed]


# Retry schedule names (issue 12, defect 9) -------------------------------------------------------------------------
@pytest.fixture
def retries_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test stage's retry settings, for services built outside a Lambda call (chalice applies them per call)."""
    config = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
    for name, value in config["stages"]["test"]["environment_variables"].items():
        monkeypatch.setenv(name, value)


def pipeline_retrier(pipelines: frozenset[str]) -> Any:
    from chalicelib import wiring
    from chalicelib.adapters.codepipeline import PipelineStages
    from chalicelib.clients import cached_client
    from chalicelib.services.pipeline_action_failed import PipelineRetrier

    return PipelineRetrier(wiring.store(), PipelineStages(cached_client("codepipeline")), wiring.retrier(),
                           pipelines, wiring.utc_now)


def test_two_pipelines_with_long_names_get_a_retry_each(aws: World, retries_configured: None) -> None:
    """Their stage retries used to be one schedule: names were cut to 48 characters and the conflict swallowed."""
    from chalicelib.domain.events import PipelineActionEvent, parse_event

    names = [f"release-pipeline-for-the-payments-service-in-production-{colour}" for colour in ("blue", "green")]
    outcomes = []
    with Client(app, stage_name="test"):
        retrier = pipeline_retrier(frozenset(names))
        for number, name in enumerate(names):
            event = load_event("codepipeline_action_failed")
            event["id"], event["detail"]["pipeline"] = f"failure-{number}", name
            outcomes.append(retrier.on_action_failed(parse_event(PipelineActionEvent, event)).action)
    assert outcomes == ["retry-scheduled", "retry-scheduled"]
    payloads = [payload for _, payload in pending(aws.client("scheduler"))]
    assert sorted(p["pipeline"] for p in payloads) == sorted(names)


def test_a_schedule_name_taken_by_another_retry_is_an_error_not_a_duplicate(aws: World,
                                                                           retries_configured: None) -> None:
    from datetime import timedelta

    from chalicelib import wiring
    from chalicelib.domain.errors import BerthError
    from chalicelib.domain.retry_payload import SsmRetry

    with Client(app, stage_name="test"):
        scheduler = wiring.scheduler()
        now = wiring.utc_now()
        payload = SsmRetry(deployment_id="d-20261127000000-00000000", attempt=2)
        assert scheduler.schedule("berth-retry-x-2", now + timedelta(minutes=5), payload, now) is True
        # The same retry again (a duplicate event, a lost answer sent again): recognised, not an error.
        assert scheduler.schedule("berth-retry-x-2", now + timedelta(minutes=7), payload, now) is False
        with pytest.raises(BerthError, match="berth-retry-x-2"):
            scheduler.schedule("berth-retry-x-2", now + timedelta(minutes=5),
                               SsmRetry(deployment_id=payload.deployment_id, attempt=3), now)
