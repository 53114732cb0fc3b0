"""ListCommandInvocations, ListCommands and CancelCommand."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws_testkit import launch

import localaws
from localaws import InstanceOutcome

DOC = "AWS-RunShellScript"
PARAMS = {"commands": ["true"]}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _send(ssm: Any, ids: list[str], **extra: Any) -> str:
    return str(ssm.send_command(DocumentName=DOC, Parameters=PARAMS, InstanceIds=ids, **extra)["Command"]["CommandId"])


def _send_by_tag(ssm: Any, **extra: Any) -> str:
    reply = ssm.send_command(
        DocumentName=DOC, Parameters=PARAMS, Targets=[{"Key": "tag:fleet", "Values": ["big"]}], **extra
    )
    return str(reply["Command"]["CommandId"])


def _command(ssm: Any, command_id: str) -> dict[str, Any]:
    return dict(ssm.list_commands(CommandId=command_id)["Commands"][0])


def test_pagination_with_max_results(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 7)
    command_id = _send(ssm, ids)
    pages, token = [], None
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else {}
        reply = ssm.list_command_invocations(CommandId=command_id, MaxResults=3, **kwargs)
        pages.append([i["InstanceId"] for i in reply["CommandInvocations"]])
        token = reply.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sorted(i for p in pages for i in p) == sorted(ids)


def test_default_page_is_50_and_more_than_50_is_refused(ssm: Any, ec2: Any) -> None:
    launch(ec2, 55, {"fleet": "big"})
    command_id = _send_by_tag(ssm)
    first = ssm.list_command_invocations(CommandId=command_id)
    assert len(first["CommandInvocations"]) == 50
    rest = ssm.list_command_invocations(CommandId=command_id, NextToken=first["NextToken"])
    assert len(rest["CommandInvocations"]) == 5 and "NextToken" not in rest
    paginator = ssm.get_paginator("list_command_invocations")
    assert sum(len(p["CommandInvocations"]) for p in paginator.paginate(CommandId=command_id)) == 55
    with pytest.raises(ClientError) as error:
        ssm.list_command_invocations(CommandId=command_id, MaxResults=51)
    assert _code(error) == "ValidationException"


def test_bad_next_token(ssm: Any, ec2: Any) -> None:
    command_id = _send(ssm, launch(ec2, 1))
    for token in ("garbage!", ssm.list_commands(MaxResults=1).get("NextToken") or "TGlzdENvbW1hbmRzOjE="):
        with pytest.raises(ClientError) as error:
            ssm.list_command_invocations(CommandId=command_id, NextToken=token)
        assert _code(error) == "InvalidNextToken"


def test_details_carry_plugins_with_output_cut_to_2500(ssm: Any, ec2: Any) -> None:
    noisy, failing = launch(ec2, 2)
    localaws.set_outcome(noisy, InstanceOutcome(stdout="x" * 3000))
    localaws.set_outcome(failing, InstanceOutcome(status="Failed", response_code=7, stdout="pulled", stderr="boom"))
    command_id = _send(ssm, [noisy, failing])
    plain = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert all(i["CommandPlugins"] == [] for i in plain)
    detailed = ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    plugins = {i["InstanceId"]: i["CommandPlugins"][0] for i in detailed}
    assert len(plugins[noisy]["Output"]) == 2500
    assert plugins[failing]["Output"] == "pulled\n----------ERROR-------\nboom"
    assert (plugins[failing]["ResponseCode"], plugins[failing]["Status"]) == (7, "Failed")
    assert plugins[failing]["Name"] == "aws:runShellScript"


def test_list_invocations_counts_reads_only_for_returned_items(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 2)
    for instance in ids:
        localaws.set_outcome(instance, InstanceOutcome(polls_before_done=1))
    command_id = _send(ssm, ids)
    first_page = ssm.list_command_invocations(CommandId=command_id, MaxResults=1)
    (read_once,) = [i["InstanceId"] for i in first_page["CommandInvocations"]]
    (unread,) = set(ids) - {read_once}
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=read_once)["Status"] == "Success"
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=unread)["Status"] == "InProgress"


def test_filters_and_instance_id(ssm: Any, ec2: Any) -> None:
    ok, bad = launch(ec2, 2)
    localaws.set_outcome(bad, InstanceOutcome(status="Failed", response_code=1))
    command_id = _send(ssm, [ok, bad])
    failed = ssm.list_command_invocations(CommandId=command_id, Filters=[{"key": "Status", "value": "Failed"}])
    assert [i["InstanceId"] for i in failed["CommandInvocations"]] == [bad]
    mine = ssm.list_command_invocations(InstanceId=ok)["CommandInvocations"]
    assert [(i["InstanceId"], i["CommandId"]) for i in mine] == [(ok, command_id)]
    later = ssm.list_command_invocations(Filters=[{"key": "InvokedAfter", "value": "2999-01-01T00:00:00Z"}])
    assert later["CommandInvocations"] == []
    by_doc = ssm.list_commands(Filters=[{"key": "DocumentName", "value": DOC}])["Commands"]
    assert [c["CommandId"] for c in by_doc] == [command_id]
    with pytest.raises(ClientError) as error:
        ssm.list_command_invocations(Filters=[{"key": "Colour", "value": "red"}])
    assert _code(error) == "ValidationException"


def test_unknown_command_id(ssm: Any) -> None:
    for call in (ssm.list_command_invocations, ssm.list_commands, ssm.cancel_command):
        with pytest.raises(ClientError) as error:
            call(CommandId="00000000-0000-0000-0000-000000000000")
        assert _code(error) == "InvalidCommandId"


def test_list_commands_aggregates_counts_and_status(ssm: Any, ec2: Any) -> None:
    ok, failed, lost = launch(ec2, 3)
    localaws.set_outcome(failed, InstanceOutcome(status="Failed", response_code=1))
    localaws.set_outcome(lost, InstanceOutcome(status="DeliveryTimedOut", response_code=-1))
    strict = _send(ssm, [ok, failed, lost])
    tolerant = _send(ssm, [ok, failed, lost], MaxErrors="2")
    command = _command(ssm, strict)
    assert (command["Status"], command["StatusDetails"]) == ("Failed", "Failed")
    counts = {k: command[k] for k in ("TargetCount", "CompletedCount", "ErrorCount", "DeliveryTimedOutCount")}
    assert counts == {"TargetCount": 3, "CompletedCount": 3, "ErrorCount": 1, "DeliveryTimedOutCount": 1}
    assert (_command(ssm, tolerant)["Status"], _command(ssm, tolerant)["StatusDetails"]) == ("Success", "Incomplete")


def test_list_commands_newest_first_paginated_and_by_instance(ssm: Any, ec2: Any) -> None:
    first, second = launch(ec2, 2)
    ids = [_send(ssm, [first]), _send(ssm, [second]), _send(ssm, [first])]
    page = ssm.list_commands(MaxResults=2)
    rest = ssm.list_commands(NextToken=page["NextToken"])
    assert [c["CommandId"] for c in page["Commands"] + rest["Commands"]] == ids[::-1]
    assert [c["CommandId"] for c in ssm.list_commands(InstanceId=first)["Commands"]] == [ids[2], ids[0]]
    assert all("NotificationArn" not in c.get("NotificationConfig", {}) for c in page["Commands"])


def test_cancel_turns_pending_invocations_into_cancelled(ssm: Any, ec2: Any) -> None:
    done, pending, spared = launch(ec2, 3)
    localaws.set_outcome(pending, InstanceOutcome(polls_before_done=5))
    localaws.set_outcome(spared, InstanceOutcome(polls_before_done=1))
    command_id = _send(ssm, [done, pending, spared])
    ssm.cancel_command(CommandId=command_id, InstanceIds=[done, pending])
    statuses = {
        i: ssm.get_command_invocation(CommandId=command_id, InstanceId=i)["Status"] for i in (done, pending, spared)
    }
    assert statuses == {done: "Success", pending: "Cancelled", spared: "InProgress"}
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=pending)["ResponseCode"] == -1
    ssm.cancel_command(CommandId=command_id)
    assert (_command(ssm, command_id)["Status"], _command(ssm, command_id)["CompletedCount"]) == ("Cancelled", 3)


def test_cancel_whole_command(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 2)
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=3))
    command_id = _send(ssm, ids)
    ssm.cancel_command(CommandId=command_id)
    assert (_command(ssm, command_id)["Status"], _command(ssm, command_id)["StatusDetails"]) == (
        "Cancelled",
        "Cancelled",
    )
