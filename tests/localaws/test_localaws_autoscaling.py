"""CompleteLifecycleAction (moto has lifecycle hooks but no lifecycle actions) and localaws.start_lifecycle_action."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from localaws_testkit import REGION, client

import localaws

GROUP, HOOK = "web-asg", "berth-launch"


@pytest.fixture
def autoscaling(aws: None) -> Any:
    ec2 = client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    scaling = client("autoscaling")
    scaling.create_launch_configuration(LaunchConfigurationName="web", ImageId="ami-1e749f67",
                                        InstanceType="t3.micro")
    scaling.create_auto_scaling_group(AutoScalingGroupName=GROUP, LaunchConfigurationName="web", MinSize=0,
                                      MaxSize=2, VPCZoneIdentifier=subnet)
    scaling.put_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
                               LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", HeartbeatTimeout=3600)
    return scaling


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_waiting_action_is_completed_once_and_recorded(autoscaling: Any) -> None:
    token = localaws.start_lifecycle_action(GROUP, HOOK, "i-0123456789abcdef0", region=REGION)
    autoscaling.complete_lifecycle_action(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
                                          LifecycleActionToken=token, InstanceId="i-0123456789abcdef0",
                                          LifecycleActionResult="CONTINUE")
    assert localaws.lifecycle_results() == [{"AutoScalingGroupName": GROUP, "LifecycleHookName": HOOK,
                                             "InstanceId": "i-0123456789abcdef0", "LifecycleActionToken": token,
                                             "LifecycleActionResult": "CONTINUE"}]
    with pytest.raises(ClientError) as again:
        autoscaling.complete_lifecycle_action(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
                                              LifecycleActionToken=token, LifecycleActionResult="ABANDON")
    assert _code(again) == "ValidationError" and "No active Lifecycle Action" in str(again.value)
    assert len(localaws.lifecycle_results()) == 1


def test_an_unknown_token_or_a_wrong_result_is_refused(autoscaling: Any) -> None:
    localaws.start_lifecycle_action(GROUP, HOOK, "i-0123456789abcdef0", region=REGION)
    with pytest.raises(ClientError) as unknown:
        autoscaling.complete_lifecycle_action(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
                                              LifecycleActionToken="87654321-4321-4321-4321-210987654321",
                                              LifecycleActionResult="CONTINUE")
    assert _code(unknown) == "ValidationError"
    with pytest.raises(ClientError) as wrong:
        autoscaling.complete_lifecycle_action(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
                                              InstanceId="i-0123456789abcdef0", LifecycleActionResult="MAYBE")
    assert _code(wrong) == "ValidationError"
    with pytest.raises(ParamValidationError):     # botocore's model: the group name is required
        autoscaling.complete_lifecycle_action(LifecycleHookName=HOOK, LifecycleActionResult="CONTINUE")
    assert localaws.lifecycle_results() == []


def test_an_action_needs_the_launch_hook_in_moto(autoscaling: Any) -> None:
    with pytest.raises(ValueError, match="no autoscaling:EC2_INSTANCE_LAUNCHING hook"):
        localaws.start_lifecycle_action(GROUP, "no-such-hook", "i-0123456789abcdef0", region=REGION)
