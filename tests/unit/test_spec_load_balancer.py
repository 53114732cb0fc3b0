"""The load balancer part of the spec: target group ARNs, the port each instance is registered with, and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.spec import LoadBalancerSpec
from tests.unit.spec_helpers import error_of, parse

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def with_groups(example_spec: dict[str, Any], *arns: Any) -> dict[str, Any]:
    example_spec["load_balancer"] = {"target_group_arns": list(arns)}
    return example_spec


def test_the_issue_example_parses_and_runs_in_waves(example_spec: dict[str, Any]) -> None:
    spec = parse(with_groups(example_spec, ARN))
    assert spec.load_balancer == LoadBalancerSpec(target_group_arns=[ARN])
    assert (spec.in_waves, spec.rollout.in_waves, spec.load_balancer_port()) == (True, False, 5000)


def test_without_it_the_spec_reads_as_before(example_spec: dict[str, Any]) -> None:
    spec = parse(example_spec)
    assert (spec.load_balancer, spec.in_waves) == (None, False)
    assert "load_balancer" not in spec.model_dump()


@pytest.mark.parametrize("arn", [
    ARN,
    "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:targetgroup/a/0123456789abcdef",
    "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:targetgroup/web-blue-2/fedcba9876543210",
    "arn:aws:elasticloadbalancing:eu-west-2:123456789012:targetgroup/" + "w" * 32 + "/0123456789abcdef",
])
def test_good_target_group_arns(example_spec: dict[str, Any], arn: str) -> None:
    assert parse(with_groups(example_spec, arn)).load_balancer.target_group_arns == [arn]


@pytest.mark.parametrize("arn", [
    "", "web", ARN + "\n", ARN.replace("targetgroup", "loadbalancer/app"), ARN.replace("123456789012", "1234"),
    ARN.replace("0123456789abcdef", "0123456789ABCDEF"), ARN.replace("/web/", "/-web/"), ARN.replace("/web/", "//"),
    ARN.replace("/web/", "/" + "w" * 33 + "/"), ARN.replace("us-east-1", "us-east"), ARN.replace("arn:aws:", "arn:x:"),
    ARN.replace("elasticloadbalancing", "ec2"), ARN + "; rm -rf /", 5, None, [ARN],
])
def test_hostile_target_group_arns_are_refused_naming_the_field(example_spec: dict[str, Any], arn: Any) -> None:
    assert "load_balancer.target_group_arns.0" in error_of(with_groups(example_spec, arn))


@pytest.mark.parametrize("groups", [{"target_group_arns": []}, {"target_group_arns": [ARN] * 2},
                                    {"target_group_arns": [ARN.replace("web", f"web{n}") for n in range(6)]},
                                    {}, {"target_group_arns": [ARN], "port": 80}, [ARN], ARN])
def test_bad_group_lists_are_refused_naming_the_field(example_spec: dict[str, Any], groups: Any) -> None:
    example_spec["load_balancer"] = groups
    assert "load_balancer" in error_of(example_spec)


def test_without_a_health_check_port_the_single_tcp_mapping_is_registered(example_spec: dict[str, Any]) -> None:
    example_spec["health_check"] = {"command": ["true"]}
    example_spec["container"]["ports"] = ["8080:5000", "53:53/udp"]
    assert parse(with_groups(example_spec, ARN)).load_balancer_port() == 8080


def test_the_health_check_port_picks_among_several_mappings(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["ports"] = ["5000:5000", "9090:9090"]
    assert parse(with_groups(example_spec, ARN)).load_balancer_port() == 5000


@pytest.mark.parametrize("ports", [[], ["8080:80", "8443:443"], ["53:53/udp"]])
def test_no_unambiguous_port_is_refused_naming_the_field(example_spec: dict[str, Any], ports: list[str]) -> None:
    example_spec["health_check"] = {"command": ["true"]}
    example_spec["container"]["ports"] = ports
    message = error_of(with_groups(example_spec, ARN))
    assert "load_balancer" in message and "health_check.port" in message and "container.ports" in message
