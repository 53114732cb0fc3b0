"""SendCommand and the reads after it, with outcomes set per instance."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws_testkit import launch

import localaws
from localaws import InstanceOutcome

DOC = "AWS-RunShellScript"
PARAMS = {"commands": ["docker ps"]}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _by_tag(ssm: Any, *targets: tuple[str, list[str]], **extra: Any) -> str:
    reply = ssm.send_command(
        DocumentName=DOC, Parameters=PARAMS, Targets=[{"Key": k, "Values": v} for k, v in targets], **extra
    )
    return str(reply["Command"]["CommandId"])


def _invoked(ssm: Any, command_id: str) -> set[str]:
    return {i["InstanceId"] for i in ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]}


def _command(ssm: Any, command_id: str) -> dict[str, Any]:
    return dict(ssm.list_commands(CommandId=command_id)["Commands"][0])


# --- who receives the command -------------------------------------------------------------------


def test_send_command_answers_pending_with_zero_counts_like_aws(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 2)
    command = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=ids)["Command"]
    assert (command["Status"], command["StatusDetails"]) == ("Pending", "Pending")
    assert (command["TargetCount"], command["CompletedCount"], command["ErrorCount"]) == (0, 0, 0)
    assert sorted(command["InstanceIds"]) == sorted(ids)
    assert command["Parameters"] == PARAMS


def test_instance_ids_reach_only_those_instances(ssm: Any, ec2: Any) -> None:
    wanted = launch(ec2, 2)
    launch(ec2, 3)  # moto alone would add these too
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=wanted)["Command"]["CommandId"]
    assert _invoked(ssm, command_id) == set(wanted)


@pytest.mark.parametrize("why", ["unknown", "stopped", "skip"])
def test_instance_ids_that_are_not_managed_nodes_fail_the_whole_call(ssm: Any, ec2: Any, why: str) -> None:
    good, bad = launch(ec2, 2)
    if why == "unknown":
        bad = "i-0123456789abcdef0"
    elif why == "stopped":
        ec2.stop_instances(InstanceIds=[bad])
    else:
        localaws.set_outcome(bad, InstanceOutcome(skip=True))
    with pytest.raises(ClientError) as error:
        ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[good, bad])
    assert _code(error) == "InvalidInstanceId"
    assert ssm.list_commands()["Commands"] == []


def test_one_tag_target(ssm: Any, ec2: Any) -> None:
    web = launch(ec2, 2, {"app": "web"})
    launch(ec2, 1, {"app": "db"})
    assert _invoked(ssm, _by_tag(ssm, ("tag:app", ["web"]))) == set(web)


def test_several_tag_keys_are_anded_and_values_ored(ssm: Any, ec2: Any) -> None:
    prod_web = launch(ec2, 1, {"app": "web", "env": "prod"})
    prod_api = launch(ec2, 1, {"app": "api", "env": "prod"})
    launch(ec2, 1, {"app": "web", "env": "dev"})
    launch(ec2, 1, {"app": "db", "env": "prod"})
    command_id = _by_tag(ssm, ("tag:app", ["web", "api"]), ("tag:env", ["prod"]))
    assert _invoked(ssm, command_id) == set(prod_web + prod_api)


def test_tag_key_and_instance_ids_targets(ssm: Any, ec2: Any) -> None:
    tagged = launch(ec2, 2, {"berth": "yes"})
    plain = launch(ec2, 2)
    assert _invoked(ssm, _by_tag(ssm, ("tag-key", ["berth"]))) == set(tagged)
    assert _invoked(ssm, _by_tag(ssm, ("InstanceIds", [plain[0]]))) == {plain[0]}


def test_no_matching_instance_gives_an_empty_successful_command(ssm: Any, ec2: Any) -> None:
    launch(ec2, 2, {"app": "web"})
    command_id = _by_tag(ssm, ("tag:app", ["nothing"]))
    assert _invoked(ssm, command_id) == set()
    command = _command(ssm, command_id)
    assert (command["Status"], command["StatusDetails"], command["TargetCount"]) == ("Success", "NoInstancesInTag", 0)


def test_stopped_and_skipped_instances_are_not_targeted(ssm: Any, ec2: Any) -> None:
    live, stopped, unmanaged = launch(ec2, 3, {"app": "web"})
    ec2.stop_instances(InstanceIds=[stopped])
    localaws.set_outcome(unmanaged, InstanceOutcome(skip=True))
    command_id = _by_tag(ssm, ("tag:app", ["web"]))
    assert _invoked(ssm, command_id) == {live}
    with pytest.raises(ClientError) as error:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=unmanaged)
    assert _code(error) == "InvocationDoesNotExist"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({}, "InvalidParameters"),
        ({"Targets": [{"Key": "color", "Values": ["x"]}]}, "InvalidParameters"),
        ({"InstanceIds": [f"i-{n:017x}" for n in range(51)]}, "ValidationException"),
        ({"Targets": [{"Key": "tag:a", "Values": ["b"]}], "MaxErrors": "lots"}, "ValidationException"),
    ],
)
def test_requests_aws_refuses(ssm: Any, ec2: Any, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as error:
        ssm.send_command(DocumentName=DOC, Parameters=PARAMS, **kwargs)
    assert _code(error) == code


# --- outcomes -----------------------------------------------------------------------------------


def test_outcomes_are_fixed_at_send_time(ssm: Any, ec2: Any) -> None:
    (instance,) = launch(ec2)
    localaws.set_outcome(instance, InstanceOutcome(status="Failed", response_code=3, stderr="no docker"))
    first = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[instance])["Command"]["CommandId"]
    localaws.set_outcome(instance, InstanceOutcome(stdout="ok"))
    second = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[instance])["Command"]["CommandId"]
    failed = ssm.get_command_invocation(CommandId=first, InstanceId=instance)
    passed = ssm.get_command_invocation(CommandId=second, InstanceId=instance)
    assert (failed["Status"], failed["ResponseCode"], failed["StandardErrorContent"]) == ("Failed", 3, "no docker")
    assert (passed["Status"], passed["ResponseCode"], passed["StandardOutputContent"]) == ("Success", 0, "ok")


def test_default_outcome_and_hook_precedence(ssm: Any, ec2: Any) -> None:
    hooked, configured, defaulted = launch(ec2, 3)
    seen: list[tuple[str, str]] = []

    def hook(instance_id: str, command: dict[str, Any]) -> InstanceOutcome | None:
        seen.append((instance_id, command["DocumentName"]))
        return InstanceOutcome(stdout="from hook") if instance_id == hooked else None

    localaws.set_default_outcome(InstanceOutcome(stdout="default"))
    localaws.set_outcome(configured, InstanceOutcome(stdout="configured"))
    localaws.set_outcome_hook(hook)
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[hooked, configured, defaulted])[
        "Command"
    ]["CommandId"]
    outputs = {
        i: ssm.get_command_invocation(CommandId=command_id, InstanceId=i)["StandardOutputContent"]
        for i in (hooked, configured, defaulted)
    }
    assert outputs == {hooked: "from hook", configured: "configured", defaulted: "default"}
    assert sorted(seen) == sorted((i, DOC) for i in (hooked, configured, defaulted))


@pytest.mark.parametrize(
    ("status", "api_status", "details"),
    [
        ("Success", "Success", "Success"),
        ("Failed", "Failed", "Failed"),
        ("TimedOut", "TimedOut", "ExecutionTimedOut"),
        ("DeliveryTimedOut", "TimedOut", "DeliveryTimedOut"),
        ("Cancelled", "Cancelled", "Cancelled"),
    ],
)
def test_final_statuses_as_the_api_names_them(ssm: Any, ec2: Any, status: str, api_status: str, details: str) -> None:
    (instance,) = launch(ec2)
    localaws.set_outcome(instance, InstanceOutcome(status=status))
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[instance])["Command"]["CommandId"]
    reply = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
    assert (reply["Status"], reply["StatusDetails"]) == (api_status, details)


def test_polls_before_done_counts_reads_per_instance(ssm: Any, ec2: Any) -> None:
    slow, fast = launch(ec2, 2)
    localaws.set_outcome(slow, InstanceOutcome(stdout="done", polls_before_done=3))
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[slow, fast])["Command"]["CommandId"]
    first = ssm.get_command_invocation(CommandId=command_id, InstanceId=slow)
    assert (first["Status"], first["ResponseCode"], first["StandardOutputContent"]) == ("InProgress", -1, "")
    listed = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert {i["InstanceId"]: i["Status"] for i in listed} == {slow: "InProgress", fast: "Success"}
    third = ssm.get_command_invocation(CommandId=command_id, InstanceId=slow)
    assert (third["Status"], third["StandardOutputContent"]) == ("InProgress", "")
    fourth = ssm.get_command_invocation(CommandId=command_id, InstanceId=slow)
    assert (fourth["Status"], fourth["StandardOutputContent"]) == ("Success", "done")
    command = _command(ssm, command_id)
    assert (command["Status"], command["CompletedCount"], command["TargetCount"]) == ("Success", 2, 2)


def test_a_look_at_the_command_is_a_read_of_each_invocation(ssm: Any, ec2: Any) -> None:
    """A poller that watches only ListCommands' counts sees the command progress, one read per look."""
    instances = launch(ec2, 3)
    for instance in instances:
        localaws.set_outcome(instance, InstanceOutcome(polls_before_done=2))
    localaws.set_outcome(instances[2], InstanceOutcome(status="Failed", response_code=1, polls_before_done=2))
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=instances,
                                  MaxErrors="1")["Command"]["CommandId"]
    seen = []
    for _ in range(3):
        command = _command(ssm, command_id)
        seen.append((command["Status"], command["TargetCount"], command["CompletedCount"], command["ErrorCount"]))
    assert seen == [("InProgress", 3, 0, 0), ("InProgress", 3, 0, 0), ("Success", 3, 3, 1)]
    listed = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert sorted(i["Status"] for i in listed) == ["Failed", "Success", "Success"]


def test_get_command_invocation_truncates_output(ssm: Any, ec2: Any) -> None:
    (instance,) = launch(ec2)
    localaws.set_outcome(instance, InstanceOutcome(stdout="o" * 30000, stderr="e" * 9000))
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[instance])["Command"]["CommandId"]
    reply = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance, PluginName="aws:runShellScript")
    assert len(reply["StandardOutputContent"]) == 24000
    assert len(reply["StandardErrorContent"]) == 8000


def test_get_command_invocation_errors(ssm: Any, ec2: Any) -> None:
    first, other = launch(ec2, 2)
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[first])["Command"]["CommandId"]
    for kwargs, code in [
        ({"CommandId": command_id, "InstanceId": other}, "InvocationDoesNotExist"),
        ({"CommandId": "00000000-0000-0000-0000-000000000000", "InstanceId": first}, "InvalidCommandId"),
        ({"CommandId": command_id, "InstanceId": first, "PluginName": "aws:runPowerShellScript"}, "InvalidPluginName"),
    ]:
        with pytest.raises(ClientError) as error:
            ssm.get_command_invocation(**kwargs)
        assert _code(error) == code


def test_not_found_reads_model_eventual_consistency(ssm: Any, ec2: Any) -> None:
    (instance,) = launch(ec2)
    localaws.set_outcome(instance, InstanceOutcome(not_found_reads=2, stdout="ok"))
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[instance])["Command"]["CommandId"]
    assert ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"] == []
    with pytest.raises(ClientError) as error:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
    assert _code(error) == "InvocationDoesNotExist"
    reply = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
    assert (reply["Status"], reply["StandardOutputContent"]) == ("Success", "ok")


def test_boto3_waiter_rides_out_not_found_and_in_progress(ssm: Any, ec2: Any) -> None:
    (instance,) = launch(ec2)
    localaws.set_outcome(instance, InstanceOutcome(not_found_reads=1, polls_before_done=2))
    command_id = ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=[instance])["Command"]["CommandId"]
    waiter = ssm.get_waiter("command_executed")
    waiter.wait(CommandId=command_id, InstanceId=instance, WaiterConfig={"Delay": 0, "MaxAttempts": 5})
