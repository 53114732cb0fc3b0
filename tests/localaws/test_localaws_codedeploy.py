"""CodeDeploy: deployment outcomes, targets with diagnostics, stop/continue, lifecycle hook statuses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws_testkit import deployment_group, launch

import localaws

REVISION = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app.zip", "bundleType": "zip"}}
FAILED_START = {
    "status": "Failed",
    "lifecycle_event": "ApplicationStart",
    "script_name": "scripts/start_container.sh",
    "error_code": "ScriptFailed",
    "message": "Script at specified location: scripts/start_container.sh run as user root failed with exit code 4",
    "log_tail": "docker: command not found",
}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _deploy(codedeploy: Any, group: str = "web") -> str:
    return str(
        codedeploy.create_deployment(applicationName="berth", deploymentGroupName=group, revision=REVISION)[
            "deploymentId"
        ]
    )


def _info(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    return dict(codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def _target(codedeploy: Any, deployment_id: str, instance_id: str) -> dict[str, Any]:
    reply = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=[instance_id])
    return dict(reply["deploymentTargets"][0]["instanceTarget"])


def test_create_deployment_gives_aws_style_ids_and_resolves_group_tags(codedeploy: Any, ec2: Any) -> None:
    web = launch(ec2, 2, {"app": "web"})
    launch(ec2, 1, {"app": "db"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    deployment_id = _deploy(codedeploy)
    assert re.fullmatch(r"d-[A-Z0-9]{9}", deployment_id)
    assert sorted(localaws.deployment_targets(deployment_id)) == sorted(web)
    assert _info(codedeploy, deployment_id)["status"] == "Created"


def test_tag_set_groups_are_anded(codedeploy: Any, ec2: Any) -> None:
    both = launch(ec2, 1, {"app": "web", "env": "prod"})
    launch(ec2, 1, {"app": "web", "env": "dev"})
    tag_set = {
        "ec2TagSetList": [
            [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}],
            [{"Value": "prod", "Type": "VALUE_ONLY"}],
        ]
    }
    deployment_group(codedeploy, "web", ec2_tag_set=tag_set)
    assert localaws.deployment_targets(_deploy(codedeploy)) == both


def test_one_active_deployment_per_group(codedeploy: Any, ec2: Any) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    first = _deploy(codedeploy)
    with pytest.raises(ClientError) as error:
        _deploy(codedeploy)
    assert _code(error) == "DeploymentLimitExceededException"
    localaws.set_deployment_outcome(first, "Succeeded")
    _deploy(codedeploy)


def test_no_matching_instances_fails_at_once(codedeploy: Any, ec2: Any) -> None:
    deployment_group(codedeploy, "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    info = _info(codedeploy, _deploy(codedeploy))
    assert (info["status"], info["errorInformation"]["code"]) == ("Failed", "NO_INSTANCES")


def test_failed_outcome_with_diagnostics(codedeploy: Any, ec2: Any) -> None:
    broken, fine = launch(ec2, 2, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    deployment_id = _deploy(codedeploy)
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={broken: FAILED_START, fine: {}})
    info = _info(codedeploy, deployment_id)
    assert (info["status"], info["errorInformation"]["code"]) == ("Failed", "HEALTH_CONSTRAINTS")
    assert "completeTime" in info
    assert info["deploymentOverview"]["Failed"] == 1 and info["deploymentOverview"]["Succeeded"] == 1
    target = _target(codedeploy, deployment_id, broken)
    assert target["status"] == "Failed"
    events = {e["lifecycleEventName"]: e for e in target["lifecycleEvents"]}
    assert [e["status"] for e in target["lifecycleEvents"]] == ["Succeeded"] * 5 + ["Failed", "Skipped"]
    assert events["ApplicationStart"]["diagnostics"] == {
        "errorCode": "ScriptFailed",
        "scriptName": "scripts/start_container.sh",
        "message": FAILED_START["message"],
        "logTail": "docker: command not found",
    }
    assert _target(codedeploy, deployment_id, fine)["status"] == "Succeeded"
    batch = codedeploy.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"][0]
    assert batch["status"] == "Failed"
    listed = codedeploy.list_deployments(
        applicationName="berth", deploymentGroupName="web", includeOnlyStatuses=["Failed"]
    )
    assert listed["deployments"] == [deployment_id]


def test_listing_targets_and_instances_with_status_filters(codedeploy: Any, ec2: Any) -> None:
    broken, fine = launch(ec2, 2, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    deployment_id = _deploy(codedeploy)
    with pytest.raises(ClientError) as error:
        codedeploy.list_deployment_targets(deploymentId=deployment_id)
    assert _code(error) == "DeploymentNotStartedException"
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={broken: FAILED_START})
    assert sorted(codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]) == sorted([broken, fine])
    failed = codedeploy.list_deployment_targets(deploymentId=deployment_id, targetFilters={"TargetStatus": ["Failed"]})
    assert failed["targetIds"] == [broken]
    assert codedeploy.list_deployment_instances(deploymentId=deployment_id, instanceStatusFilter=["Skipped"])[
        "instancesList"
    ] == [fine]
    single = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=broken)["deploymentTarget"]
    assert single["instanceTarget"]["status"] == "Failed"


def test_in_progress_instance_and_extra_instances(codedeploy: Any, ec2: Any) -> None:
    (member,) = launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    deployment_id = _deploy(codedeploy)
    localaws.set_deployment_outcome(
        deployment_id,
        "InProgress",
        instances={"i-0aaaaaaaaaaaaaaaa": {"status": "InProgress", "lifecycle_event": "Install"}},
    )
    assert localaws.deployment_targets(deployment_id) == [member, "i-0aaaaaaaaaaaaaaaa"]
    target = _target(codedeploy, deployment_id, "i-0aaaaaaaaaaaaaaaa")
    assert [e["status"] for e in target["lifecycleEvents"]] == ["Succeeded"] * 3 + ["InProgress"] + ["Pending"] * 3
    assert _target(codedeploy, deployment_id, member)["status"] == "InProgress"


def test_rollback_creator(codedeploy: Any, ec2: Any) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    deployment_id = _deploy(codedeploy)
    localaws.set_deployment_outcome(deployment_id, "Succeeded", creator="codeDeployRollback")
    assert _info(codedeploy, deployment_id)["creator"] == "codeDeployRollback"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "Done"},
        {"creator": "autoRollback"},
        {"error_code": "SOMETHING"},
        {"instances": {"i-1": {"state": "Failed"}}},
        {"instances": {"i-1": {"status": "Failed", "lifecycle_event": "Deploy"}}},
        {"instances": {"i-1": {"status": "Failed", "error_code": "Boom"}}},
    ],
)
def test_outcomes_aws_could_not_report_are_refused(codedeploy: Any, ec2: Any, kwargs: dict[str, Any]) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    with pytest.raises(ValueError):
        localaws.set_deployment_outcome(_deploy(codedeploy), **kwargs)


def test_unknown_deployment(codedeploy: Any) -> None:
    with pytest.raises(KeyError):
        localaws.set_deployment_outcome("d-NOPE00000", "Failed")
    for call in (codedeploy.stop_deployment, codedeploy.list_deployment_targets, codedeploy.list_deployment_instances):
        with pytest.raises(ClientError) as error:
            call(deploymentId="d-NOPE00000")
        assert _code(error) == "DeploymentDoesNotExistException"


def test_batch_target_errors(codedeploy: Any, ec2: Any) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    deployment_id = _deploy(codedeploy)
    localaws.set_deployment_outcome(deployment_id, "Succeeded")
    for target_ids, code in [
        ([], "DeploymentTargetIdRequiredException"),
        ([f"i-{n:017x}" for n in range(26)], "DeploymentTargetListSizeExceededException"),
        (["i-0bbbbbbbbbbbbbbbb"], "DeploymentTargetDoesNotExistException"),
    ]:
        with pytest.raises(ClientError) as error:
            codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=target_ids)
        assert _code(error) == code


def test_stop_deployment(codedeploy: Any, ec2: Any) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    deployment_id = _deploy(codedeploy)
    reply = codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=False)
    assert reply["status"] == "Pending"
    info = _info(codedeploy, deployment_id)
    assert (info["status"], info["errorInformation"]["code"]) == ("Stopped", "MANUAL_STOP")
    with pytest.raises(ClientError) as error:
        codedeploy.stop_deployment(deploymentId=deployment_id)
    assert _code(error) == "DeploymentAlreadyCompletedException"
    _deploy(codedeploy)  # a stopped deployment no longer blocks the group


def test_continue_deployment_needs_ready(codedeploy: Any, ec2: Any) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    deployment_id = _deploy(codedeploy)
    with pytest.raises(ClientError) as error:
        codedeploy.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    assert _code(error) == "DeploymentIsNotInReadyStateException"
    localaws.set_deployment_outcome(deployment_id, "Ready")
    codedeploy.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    assert _info(codedeploy, deployment_id)["status"] == "InProgress"
    localaws.set_deployment_outcome(deployment_id, "Succeeded")
    with pytest.raises(ClientError) as error:
        codedeploy.continue_deployment(deploymentId=deployment_id)
    assert _code(error) == "DeploymentAlreadyCompletedException"


def _lambda_deployment(codedeploy: Any) -> str:
    codedeploy.create_application(applicationName="hooks", computePlatform="Lambda")
    codedeploy.create_deployment_group(
        applicationName="hooks",
        deploymentGroupName="fn",
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    )
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}}
    reply = codedeploy.create_deployment(applicationName="hooks", deploymentGroupName="fn", revision=revision)
    return str(reply["deploymentId"])


def test_lifecycle_hook_status_is_recorded_once(codedeploy: Any) -> None:
    deployment_id = _lambda_deployment(codedeploy)
    reply = codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id, lifecycleEventHookExecutionId="hook-1", status="Succeeded"
    )
    assert reply["lifecycleEventHookExecutionId"] == "hook-1"
    assert localaws.hook_statuses() == {(deployment_id, "hook-1"): "Succeeded"}
    for status, code in [("Failed", "LifecycleEventAlreadyCompletedException")]:
        with pytest.raises(ClientError) as error:
            codedeploy.put_lifecycle_event_hook_execution_status(
                deploymentId=deployment_id, lifecycleEventHookExecutionId="hook-1", status=status
            )
        assert _code(error) == code
    with pytest.raises(ClientError) as error:
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId="hook-2", status="InProgress"
        )
    assert _code(error) == "InvalidLifecycleEventHookExecutionStatusException"


def test_lifecycle_hook_status_refused_for_ec2_deployments(codedeploy: Any, ec2: Any) -> None:
    launch(ec2, 1, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Type": "KEY_ONLY"}])
    with pytest.raises(ClientError) as error:
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=_deploy(codedeploy), lifecycleEventHookExecutionId="h", status="Succeeded"
        )
    assert _code(error) == "UnsupportedActionForDeploymentTypeException"
    assert localaws.hook_statuses() == {}


def test_older_instance_calls_show_the_same_diagnostics(codedeploy: Any, ec2: Any) -> None:
    broken, fine = launch(ec2, 2, {"app": "web"})
    deployment_group(codedeploy, "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    deployment_id = _deploy(codedeploy)
    localaws.set_deployment_outcome(deployment_id, "Failed", instances={broken: FAILED_START})
    summary = codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId=broken)["instanceSummary"]
    assert summary["instanceId"].endswith(f":instance/{broken}") and summary["instanceId"].startswith("arn:aws:ec2:")
    failed = [e for e in summary["lifecycleEvents"] if e["status"] == "Failed"]
    assert failed[0]["diagnostics"]["logTail"] == "docker: command not found"
    batch = codedeploy.batch_get_deployment_instances(
        deploymentId=deployment_id, instanceIds=[fine, "i-0ffffffffffffffff"]
    )
    assert [s["status"] for s in batch["instancesSummary"]] == ["Skipped"]
    assert "i-0ffffffffffffffff" in batch["errorMessage"]
    with pytest.raises(ClientError) as error:
        codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId="i-0ffffffffffffffff")
    assert _code(error) == "InstanceDoesNotExistException"
    with pytest.raises(ClientError) as error:
        codedeploy.batch_get_deployment_instances(deploymentId=deployment_id, instanceIds=[broken] * 26)
    assert _code(error) == "BatchLimitExceededException"
