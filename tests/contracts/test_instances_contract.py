"""InstanceDirectory: the fleet in memory (tests/fakes/fleet.py) and the adapter on moto's EC2 answer alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.domain.spec import InstancesSpec
from tests.fakes.fleet import FakeInstanceDirectory, Fleet
from tools import emulated

WEB = {"app": "web", "env": "prod"}


class World:
    directory: InstanceDirectory
    launch: Any
    stop: Any


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    world = World()
    if request.param == "fake":
        fleet = Fleet()
        world.directory, world.launch, world.stop = FakeInstanceDirectory(fleet), fleet.launch, fleet.stop
    else:
        request.getfixturevalue("moto_account")
        ec2 = boto3.client("ec2", region_name="us-east-1")
        world.directory = InstanceDirectory(ec2)
        world.launch = lambda count, tags, architecture="x86_64": emulated.launch(ec2, count, tags, architecture)
        world.stop = lambda instance_id: ec2.stop_instances(InstanceIds=[instance_id])
    yield world


def test_tags_match_every_instance_carrying_all_of_them_whatever_its_state(world: World) -> None:
    web = world.launch(2, WEB)
    world.launch(1, {"app": "web", "env": "staging"})
    world.stop(web[0])
    assert world.directory.running_instances(InstancesSpec(tags=WEB)) == web
    assert world.directory.running_instances(InstancesSpec(tags={"app": "none"})) == []


def test_ids_are_narrowed_to_the_running_ones(world: World) -> None:
    first, second, third = world.launch(3, WEB)
    world.stop(second)
    assert world.directory.running_instances(InstancesSpec(ids=[third, second, first])) == [first, third]
    assert world.directory.running_among([first, second]) == {first}


def test_the_running_instances_of_given_architectures_come_with_theirs(world: World) -> None:
    intel = world.launch(2, WEB)
    graviton = world.launch(2, WEB, "arm64")
    world.launch(1, {"app": "other"}, "arm64")
    world.stop(graviton[1])
    assert world.directory.of_architectures(InstancesSpec(tags=WEB), ["arm64", "i386"]) == {graviton[0]: "arm64"}
    assert world.directory.of_architectures(InstancesSpec(tags=WEB), ["x86_64"]) == dict.fromkeys(intel, "x86_64")
    assert world.directory.of_architectures(InstancesSpec(ids=[intel[0], *graviton]), ["arm64"]) == {
        graviton[0]: "arm64"}
    assert world.directory.of_architectures(InstancesSpec(tags=WEB), []) == {}
