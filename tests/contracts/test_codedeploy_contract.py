"""CodeDeployGateway, the two calls the lifecycle hook makes: the fake (tests/fakes/codedeploy.py) and the adapter
on moto + localaws answer alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest

from chalicelib.adapters.codedeploy import CodeDeployGateway
from chalicelib.domain.errors import AwsCallFailed
from tests.fakes.codedeploy import FakeCodeDeploy

APPSPEC = '{"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {}}}]}'


class World:
    gateway: CodeDeployGateway
    create: Callable[[str, str], str]                 # (application, group) -> a new deployment's id
    statuses: Callable[[], dict[tuple[str, str], str]]


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    world = World()
    if request.param == "fake":
        fake = FakeCodeDeploy()

        def add(application: str, group: str) -> str:
            deployment_id = f"d-FAKE{len(fake.deployments) + 1:05d}"
            fake.add(deployment_id, application, group)
            return deployment_id

        world.gateway, world.create, world.statuses = fake, add, lambda: fake.hook_statuses
    else:
        import localaws

        request.getfixturevalue("moto_account")
        client = boto3.client("codedeploy", region_name="us-east-1")

        def create(application: str, group: str) -> str:
            client.create_application(applicationName=application, computePlatform="ECS")
            client.create_deployment_group(applicationName=application, deploymentGroupName=group,
                                           serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy")
            return str(client.create_deployment(
                applicationName=application, deploymentGroupName=group,
                revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": APPSPEC}})["deploymentId"])

        world.gateway, world.create, world.statuses = CodeDeployGateway(client, lambda: client), create, \
            localaws.hook_statuses
    yield world


def test_a_deployment_names_its_application_and_group(world: World) -> None:
    deployment_id = world.create("web-ecs", "web-ecs-prod")
    info = world.gateway.deployment(deployment_id)
    assert (info.deployment_id, info.application, info.group, info.is_rollback) == (
        deployment_id, "web-ecs", "web-ecs-prod", False)


def test_a_hook_status_is_reported_once_per_execution(world: World) -> None:
    deployment_id = world.create("web-ecs", "web-ecs-prod")
    world.gateway.put_hook_status(deployment_id, "hook-1", True)
    world.gateway.put_hook_status(deployment_id, "hook-2", False)
    assert world.statuses() == {(deployment_id, "hook-1"): "Succeeded", (deployment_id, "hook-2"): "Failed"}


@pytest.mark.parametrize("call", [
    lambda gateway: gateway.deployment("d-NOSUCH123"),
    lambda gateway: gateway.put_hook_status("d-NOSUCH123", "hook-1", True),
], ids=["deployment", "put_hook_status"])
def test_an_unknown_deployment_is_an_aws_failure(world: World, call: Callable[[CodeDeployGateway], object]) -> None:
    with pytest.raises(AwsCallFailed, match="failed with DeploymentDoesNotExist"):
        call(world.gateway)
