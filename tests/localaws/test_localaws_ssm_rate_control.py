"""MaxConcurrency and MaxErrors: invocations wait as Pending, and end as Terminated past the error budget."""

from __future__ import annotations

from typing import Any

from localaws_testkit import launch

import localaws
from localaws import InstanceOutcome

DOC = "AWS-RunShellScript"


def _send(ssm: Any, ids: list[str], **rate: str) -> str:
    reply = ssm.send_command(DocumentName=DOC, InstanceIds=ids, Parameters={"commands": ["true"]}, **rate)
    return str(reply["Command"]["CommandId"])


def _peek(ssm: Any, command_id: str, ids: list[str]) -> list[tuple[str, str]]:
    """(Status, StatusDetails) per instance, in ``ids`` order (each call is a read; use where outcomes are instant)."""
    found = {}
    for instance_id in ids:
        (invocation,) = ssm.list_command_invocations(CommandId=command_id, InstanceId=instance_id)["CommandInvocations"]
        found[instance_id] = (invocation["Status"], invocation["StatusDetails"])
    return [found[i] for i in ids]


def _command(ssm: Any, command_id: str) -> dict[str, Any]:
    return dict(ssm.list_commands(CommandId=command_id)["Commands"][0])


def test_max_errors_zero_one_at_a_time_stops_after_the_first_failure(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 4)
    localaws.set_outcome(ids[1], InstanceOutcome(status="Failed", response_code=1))
    command_id = _send(ssm, ids, MaxConcurrency="1", MaxErrors="0")
    assert _peek(ssm, command_id, ids) == [
        ("Success", "Success"),
        ("Failed", "Failed"),
        ("Cancelled", "Terminated"),
        ("Cancelled", "Terminated"),
    ]
    command = _command(ssm, command_id)
    assert (command["Status"], command["StatusDetails"]) == ("Failed", "Failed")
    assert (command["TargetCount"], command["CompletedCount"], command["ErrorCount"]) == (4, 4, 1)


def test_invocations_already_in_flight_complete(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 4)
    localaws.set_outcome(ids[0], InstanceOutcome(status="Failed", response_code=1))
    command_id = _send(ssm, ids, MaxConcurrency="50%", MaxErrors="0")
    assert [s for s, _ in _peek(ssm, command_id, ids)] == ["Failed", "Success", "Cancelled", "Cancelled"]


def test_waiting_invocations_are_pending_until_the_window_frees(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 3)
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    command_id = _send(ssm, ids, MaxConcurrency="1")
    first = ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[1])
    assert (first["Status"], first["ExecutionStartDateTime"]) == ("Pending", "")
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[1])["Status"] == "Pending"  # no poll
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[0])["Status"] == "InProgress"
    # that read finished ids[0], so ids[1] was sent
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[1])["Status"] == "InProgress"
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[1])["Status"] == "Success"
    assert _command(ssm, command_id)["Status"] == "InProgress"
    ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[2])
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=ids[2])["Status"] == "Success"
    assert _command(ssm, command_id)["Status"] == "Success"


def test_errors_within_the_budget_give_incomplete(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 4)
    localaws.set_outcome(ids[0], InstanceOutcome(status="Failed", response_code=1))
    command_id = _send(ssm, ids, MaxConcurrency="1", MaxErrors="25%")
    assert [s for s, _ in _peek(ssm, command_id, ids)] == ["Failed", "Success", "Success", "Success"]
    command = _command(ssm, command_id)
    assert (command["Status"], command["StatusDetails"], command["ErrorCount"]) == ("Success", "Incomplete", 1)


def test_delivery_timeouts_do_not_spend_the_error_budget(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 3)
    localaws.set_outcome(ids[0], InstanceOutcome(status="DeliveryTimedOut", response_code=-1))
    command_id = _send(ssm, ids, MaxConcurrency="1", MaxErrors="1")
    assert [s for s, _ in _peek(ssm, command_id, ids)] == ["TimedOut", "Success", "Success"]
    command = _command(ssm, command_id)
    assert (command["StatusDetails"], command["DeliveryTimedOutCount"], command["ErrorCount"]) == ("Incomplete", 1, 0)


def test_cancel_reaches_waiting_invocations(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 3)
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=2))
    command_id = _send(ssm, ids, MaxConcurrency="1")
    ssm.cancel_command(CommandId=command_id)
    assert _peek(ssm, command_id, ids) == [("Cancelled", "Cancelled")] * 3


def test_targets_are_sent_in_instance_id_order(ssm: Any, ec2: Any) -> None:
    ids = sorted(launch(ec2, 5, {"app": "web"}))
    localaws.set_outcome(ids[2], InstanceOutcome(status="Failed", response_code=1))
    reply = ssm.send_command(
        DocumentName=DOC,
        Targets=[{"Key": "tag:app", "Values": ["web"]}],
        Parameters={"commands": ["true"]},
        MaxConcurrency="1",
    )
    kinds = [s for s, _ in _peek(ssm, reply["Command"]["CommandId"], ids)]
    assert kinds == ["Success", "Success", "Failed", "Cancelled", "Cancelled"]
