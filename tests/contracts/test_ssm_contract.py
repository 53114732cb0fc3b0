"""SsmGateway: the in-memory fake (tests/fakes/ssm.py) and the adapter on moto + localaws answer alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib.adapters.ssm import SsmGateway
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.progress import CommandState, Invocation
from chalicelib.domain.spec import InstancesSpec, RolloutSpec
from localaws import InstanceOutcome
from tests.fakes.fleet import Fleet
from tests.fakes.ssm import FakeSsmGateway
from tools import emulated

WEB = {"app": "web"}
ALL_AT_ONCE = RolloutSpec(max_concurrency="100%", max_errors="0")


class SsmWorld:
    """A gateway and the means to set up what it talks to: instances and what they do with commands."""

    gateway: SsmGateway

    def launch(self, count: int, tags: dict[str, str]) -> list[str]:
        raise NotImplementedError

    def set_outcome(self, instance_id: str, outcome: InstanceOutcome) -> None:
        raise NotImplementedError

    def set_default_outcome(self, outcome: InstanceOutcome) -> None:
        raise NotImplementedError


class FakeWorld(SsmWorld):
    def __init__(self) -> None:
        self.fleet = Fleet()
        self.gateway = self.fake = FakeSsmGateway(self.fleet)

    def launch(self, count: int, tags: dict[str, str]) -> list[str]:
        return self.fleet.launch(count, tags)

    def set_outcome(self, instance_id: str, outcome: InstanceOutcome) -> None:
        self.fake.set_outcome(instance_id, outcome)

    def set_default_outcome(self, outcome: InstanceOutcome) -> None:
        self.fake.set_default_outcome(outcome)


class MotoWorld(SsmWorld):
    def __init__(self) -> None:
        self.ec2 = boto3.client("ec2", region_name="us-east-1")
        ssm = boto3.client("ssm", region_name="us-east-1")
        self.gateway = SsmGateway(ssm, lambda: ssm)

    def launch(self, count: int, tags: dict[str, str]) -> list[str]:
        return emulated.launch(self.ec2, count, tags)

    def set_outcome(self, instance_id: str, outcome: InstanceOutcome) -> None:
        import localaws

        localaws.set_outcome(instance_id, outcome)

    def set_default_outcome(self, outcome: InstanceOutcome) -> None:
        import localaws

        localaws.set_default_outcome(outcome)


# The moto side costs seconds a case (a fresh account, EC2 instances): it runs in the whole suite, not in test-fast.
@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def world(request: pytest.FixtureRequest) -> Iterator[SsmWorld]:
    if request.param == "fake":
        yield FakeWorld()
    else:
        request.getfixturevalue("moto_account")
        yield MotoWorld()


def send(world: SsmWorld, instances: InstancesSpec, rollout: RolloutSpec = ALL_AT_ONCE, comment: str = "c") -> str:
    return world.gateway.send_deploy_command(instances, ["echo hello"], rollout, comment)


def test_a_command_by_tags_reaches_the_running_tagged_instances(world: SsmWorld) -> None:
    web = world.launch(2, WEB)
    world.launch(1, {"app": "other"})
    world.set_default_outcome(InstanceOutcome(stdout="berth-result: ok"))
    command_id = send(world, InstancesSpec(tags=WEB))

    assert world.gateway.command_state(command_id) == CommandState("Success", "Success", 2, 2, 0, 0)
    assert sorted(world.gateway.list_invocations(command_id), key=lambda i: i.instance_id) == [
        Invocation(instance, "Success", 0, "berth-result: ok") for instance in web]
    assert [(i.response_code, i.output) for i in world.gateway.list_invocations(command_id, details=False)] == [
        (None, "")] * 2


def test_no_tagged_instance_is_a_success_with_no_instances(world: SsmWorld) -> None:
    command_id = send(world, InstancesSpec(tags=WEB))
    assert world.gateway.command_state(command_id) == CommandState("Success", "NoInstancesInTag", 0, 0, 0, 0)
    assert world.gateway.list_invocations(command_id) == []


def test_each_read_brings_a_running_command_closer_to_done(world: SsmWorld) -> None:
    world.launch(3, WEB)
    world.set_default_outcome(InstanceOutcome(polls_before_done=2))
    command_id = send(world, InstancesSpec(tags=WEB), RolloutSpec(max_concurrency="1", max_errors="0"))
    states = [world.gateway.command_state(command_id) for _ in range(7)]
    assert [(s.status, s.completed_count) for s in states if s is not None] == [
        ("InProgress", 0), ("InProgress", 0), ("InProgress", 1), ("InProgress", 1), ("InProgress", 2),
        ("InProgress", 2), ("Success", 3)]


def test_a_failure_over_the_budget_fails_the_command_and_stops_the_rest(world: SsmWorld) -> None:
    first, second, third = world.launch(3, WEB)
    world.set_outcome(first, InstanceOutcome(status="Failed", response_code=1, stdout="out", stderr="boom"))
    command_id = send(world, InstancesSpec(tags=WEB), RolloutSpec(max_concurrency="1", max_errors="0"))

    assert world.gateway.command_state(command_id) == CommandState("Failed", "Failed", 3, 3, 1, 0)
    by_instance = {i.instance_id: i for i in world.gateway.list_invocations(command_id)}
    assert by_instance[first] == Invocation(first, "Failed", 1, "out\n----------ERROR-------\nboom")
    assert {by_instance[second].status, by_instance[third].status} == {"Cancelled"}
    assert world.gateway.full_output(command_id, first) == "out\n[stderr]\nboom"


def test_a_timed_out_delivery_is_counted_apart(world: SsmWorld) -> None:
    (instance,) = world.launch(1, WEB)
    world.set_outcome(instance, InstanceOutcome(status="DeliveryTimedOut"))
    command_id = send(world, InstancesSpec(tags=WEB))
    assert world.gateway.command_state(command_id) == CommandState("TimedOut", "DeliveryTimedOut", 1, 1, 0, 1)
    assert [i.status for i in world.gateway.list_invocations(command_id)] == ["TimedOut"]


def test_instance_ids_must_all_be_managed_and_running(world: SsmWorld) -> None:
    managed, unmanaged = world.launch(2, WEB)
    world.set_outcome(unmanaged, InstanceOutcome(skip=True))
    with pytest.raises(AwsCallFailed, match="SSM SendCommand failed with InvalidInstanceId"):
        send(world, InstancesSpec(ids=[managed, unmanaged]))
    command_id = send(world, InstancesSpec(ids=[managed]))
    assert [i.instance_id for i in world.gateway.list_invocations(command_id)] == [managed]


def test_an_unmanaged_instance_is_left_out_of_a_command_by_tags(world: SsmWorld) -> None:
    managed, unmanaged = world.launch(2, WEB)
    world.set_outcome(unmanaged, InstanceOutcome(skip=True))
    command_id = send(world, InstancesSpec(tags=WEB))
    assert [i.instance_id for i in world.gateway.list_invocations(command_id)] == [managed]


def test_ping_statuses_name_the_managed_nodes_among_the_targets_instances(world: SsmWorld) -> None:
    managed, unmanaged = world.launch(2, WEB)
    world.launch(1, {"app": "other"})
    world.set_outcome(unmanaged, InstanceOutcome(skip=True))
    assert world.gateway.ping_statuses(InstancesSpec(tags=WEB)) == {managed: "Online"}
    # By ids, an id that is not a managed node fails DescribeInstanceInformation as a whole: it is left out.
    assert world.gateway.ping_statuses(InstancesSpec(ids=[managed, unmanaged])) == {managed: "Online"}
    assert world.gateway.ping_statuses(InstancesSpec(ids=[unmanaged])) == {}


def test_a_cancelled_command_ends_cancelled(world: SsmWorld) -> None:
    world.launch(2, WEB)
    world.set_default_outcome(InstanceOutcome(polls_before_done=10))
    command_id = send(world, InstancesSpec(tags=WEB))
    world.gateway.cancel(command_id)
    state = world.gateway.command_state(command_id)
    assert state is not None and (state.status, state.over) == ("Cancelled", True)
    assert {i.status for i in world.gateway.list_invocations(command_id)} == {"Cancelled"}


def test_commands_are_found_by_their_comment_newest_first(world: SsmWorld) -> None:
    world.launch(1, WEB)
    before = datetime.now(UTC)
    first = send(world, InstancesSpec(tags=WEB), comment="berth d-1 attempt 1 try 1")
    send(world, InstancesSpec(tags=WEB), comment="someone else's")
    second = send(world, InstancesSpec(tags=WEB), comment="berth d-1 attempt 1 try 2")

    def mine(comment: str) -> bool:
        return comment.startswith("berth d-1 ")

    assert world.gateway.find_commands(mine, before) == [("berth d-1 attempt 1 try 2", second),
                                                        ("berth d-1 attempt 1 try 1", first)]
    assert world.gateway.find_commands(mine, before + timedelta(hours=1)) == []


def test_a_long_comment_is_cut_to_what_ssm_keeps(world: SsmWorld) -> None:
    world.launch(1, WEB)
    send(world, InstancesSpec(tags=WEB), comment="x" * 150)
    assert [comment for comment, _ in world.gateway.find_commands(lambda c: True, datetime.now(UTC))] == ["x" * 100]


@pytest.mark.parametrize("call", [
    lambda gateway: gateway.command_state("11111111-2222-3333-4444-555555555555"),
    lambda gateway: gateway.list_invocations("11111111-2222-3333-4444-555555555555"),
    lambda gateway: gateway.cancel("11111111-2222-3333-4444-555555555555"),
], ids=["command_state", "list_invocations", "cancel"])
def test_an_unknown_command_is_an_aws_failure(world: SsmWorld, call: Any) -> None:
    with pytest.raises(AwsCallFailed, match="failed with InvalidCommandId"):
        call(world.gateway)


def test_the_output_of_an_instance_without_an_invocation_is_an_aws_failure(world: SsmWorld) -> None:
    world.launch(1, WEB)
    command_id = send(world, InstancesSpec(tags=WEB))
    with pytest.raises(AwsCallFailed, match="InvocationDoesNotExist"):
        world.gateway.full_output(command_id, "i-0123456789abcdef0")
