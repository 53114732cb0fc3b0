"""UserParameters: the target spec, its strictness, and error messages that name fields but never echo values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.image_ref import ImageRef
from chalicelib.domain.spec import (
    ContainerSpec,
    HealthCheckSpec,
    InstancesSpec,
    RetrySpec,
    RolloutSpec,
    TargetReference,
    TargetSpec,
    parse_pipeline_parameters,
)
from tests.unit.conftest import EXAMPLE_SPEC
from tests.unit.spec_helpers import error_of, parse

IDS = [f"i-{n:017x}" for n in range(60)]
SECRET = "hunter2-Sup3rS3cr3t-AKIAXXXXXXXXXXXX-token"


def test_the_example_spec_from_the_issue_parses() -> None:
    spec = parse(EXAMPLE_SPEC)
    assert spec == TargetSpec(
        target="web-prod",
        instances=InstancesSpec(tags={"app": "web", "env": "prod"}),
        container=ContainerSpec(name="web", ports=["5000:5000"], env={"APP_MODE": "production"}),
        health_check=HealthCheckSpec(path="/health", port=5000, timeout_seconds=60),
        rollout=RolloutSpec(max_concurrency="25%", max_errors="0"),
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/web:20240912",
    )
    assert spec.image_ref() == ImageRef("123456789012.dkr.ecr.us-east-1.amazonaws.com", "web", "20240912")
    assert spec.image_ref().ecr_region == "us-east-1"


def test_defaults_of_a_minimal_spec() -> None:
    spec = parse({"target": "t", "instances": {"ids": IDS[:1]}, "container": {"name": "c1"}})
    assert (spec.health_check, spec.rollout, spec.retry, spec.codedeploy, spec.image, spec.allow_mutable_tags) == (
        None, RolloutSpec(max_concurrency="25%", max_errors="0", timeout_seconds=3600), RetrySpec(), None, None, False)
    assert spec.container == ContainerSpec(name="c1", ports=[], env={})
    assert spec.image_ref() is None
    assert HealthCheckSpec(port=80) == HealthCheckSpec(path="/", port=80, timeout_seconds=60, interval_seconds=2)


@pytest.mark.parametrize(("data", "expected"), [
    ({"target": "web-prod"}, TargetReference(target="web-prod")),
    ({"target": "web-prod", "image": "nginx:1.27"}, TargetReference(target="web-prod", image="nginx:1.27")),
])
def test_a_name_alone_is_a_target_reference(data: dict[str, Any], expected: TargetReference) -> None:
    assert parse(data) == expected


@pytest.mark.parametrize("data", [
    {"target": "web-prod", "image": "Nginx"},
    {"target": "web prod"},
    {"target": ""},
    {"target": "x" * 64},
    {},
    {"image": "nginx:1"},
])
def test_bad_target_references(data: dict[str, Any]) -> None:
    error_of(data)


@pytest.mark.parametrize("raw", [None, "", "   ", "\n\t"])
def test_missing_user_parameters_say_how_to_set_them(raw: str | None) -> None:
    with pytest.raises(InvalidRevision, match="UserParameters are missing"):
        parse_pipeline_parameters(raw)


@pytest.mark.parametrize("raw", ["some-input-such-as-a-URL", "{", '{"target": }', "{'target': 'x'}"])
def test_user_parameters_that_are_not_json(raw: str) -> None:
    with pytest.raises(InvalidRevision, match="not valid JSON"):
        parse_pipeline_parameters(raw)


@pytest.mark.parametrize(("raw", "says"), [
    ("[" * 100_000, "nested too deeply"),
    ('{"target": "web", "retry": {"max_attempts": ' + "9" * 5000 + "}}", "a number of more than 4300 digits"),
])
def test_hostile_user_parameters_are_a_clear_invalid_revision(raw: str, says: str) -> None:
    with pytest.raises(InvalidRevision, match=f"UserParameters are not valid JSON: {says}"):
        parse_pipeline_parameters(raw)


@pytest.mark.parametrize("raw", ['"web-prod"', "[]", "42", "null", "true"])
def test_user_parameters_must_be_an_object(raw: str) -> None:
    with pytest.raises(InvalidRevision, match="must be a JSON object"):
        parse_pipeline_parameters(raw)


@pytest.mark.parametrize(("path", "key"), [
    ((), "max_concurency"),
    ((), "imgae"),
    (("instances",), "tag"),
    (("container",), "environment"),
    (("health_check",), "timeout"),
    (("rollout",), "max_concurency"),
    (("retry",), "attempts"),
    (("codedeploy",), "group"),
])
def test_unknown_keys_at_every_level_are_errors_naming_the_field(example_spec: dict[str, Any],
                                                                 path: tuple[str, ...], key: str) -> None:
    example_spec["retry"] = {"max_attempts": 2}
    example_spec["codedeploy"] = {"application": "web", "deployment_group": "prod"}
    parse(example_spec)  # the base is valid: the unknown key below is the only fault
    node = example_spec
    for part in path:
        node = node[part]
    node[key] = "50"
    message = error_of(example_spec)
    assert ".".join([*path, key]) + ": unknown key" in message


def test_every_bad_field_is_named_in_one_message(example_spec: dict[str, Any]) -> None:
    example_spec["container"]["ports"] = ["0:1"]
    example_spec["rollout"]["max_concurrency"] = "0"
    example_spec["health_check"]["path"] = "health"
    message = error_of(example_spec)
    assert message.startswith("UserParameters are not valid: ")
    for field in ("container.ports", "rollout.max_concurrency", "health_check.path"):
        assert field in message


# ------------------------------------------------------------------------------------------------ instances

def test_fifty_instance_ids_are_accepted(example_spec: dict[str, Any]) -> None:
    example_spec["instances"] = {"ids": IDS[:50]}
    assert parse(example_spec).instances == InstancesSpec(ids=IDS[:50])


def test_hybrid_managed_node_ids_are_refused_saying_why(example_spec: dict[str, Any]) -> None:
    example_spec["instances"] = {"ids": ["i-01234567", "mi-0123456789abcdef0"]}
    message = error_of(example_spec)
    assert "instances.ids.1" in message and "hybrid" in message and "mi-0123456789abcdef0" in message
    assert "EC2 instance ids (i-...)" in message


@pytest.mark.parametrize(("instances", "fragment"), [
    ({"ids": IDS[:51]}, "instances.ids"),
    ({"ids": []}, "instances.ids"),
    ({"ids": ["i-123"]}, "instances.ids.0"),
    ({"ids": ["web-1"]}, "instances.ids.0"),
    ({"ids": [IDS[0], IDS[1], IDS[0]]}, "twice"),
    ({"tags": {"app": "web"}, "ids": IDS[:1]}, "exactly one"),
    ({}, "exactly one"),
    ({"tags": None, "ids": None}, "exactly one"),
    ({"tags": {}}, "1 to 5"),
    ({"tags": {f"k{n}": "v" for n in range(6)}}, "1 to 5"),
    ({"tags": {"aws:cloudformation:stack-name": "web"}}, "reserved"),
    ({"tags": {"AWS:foo": "web"}}, "reserved"),
    ({"tags": {"app": "web;reboot"}}, "instances.tags.app"),
    ({"tags": {"app": ""}}, "instances.tags.app"),
    ({"tags": {"app": "x" * 129}}, "instances.tags.app"),
    ({"tags": {"a$b": "web"}}, "instances.tags"),
])
def test_bad_instance_selections(example_spec: dict[str, Any], instances: dict[str, Any], fragment: str) -> None:
    example_spec["instances"] = instances
    assert fragment in error_of(example_spec)


def test_five_tag_keys_with_the_ec2_tag_alphabet_are_accepted(example_spec: dict[str, Any]) -> None:
    tags = {"app": "web", "env": "prod", "team name": "a+b=c.d:e/f@g", "Cost-Center": "42", "x_y": "_"}
    example_spec["instances"] = {"tags": tags}
    assert parse(example_spec).instances == InstancesSpec(tags=tags)


# ------------------------------------------------------------------------------------------------ rollout

@pytest.mark.parametrize("value", ["1", "50", "999999", "1%", "25%", "99%", "100%"])
def test_good_max_concurrency(example_spec: dict[str, Any], value: str) -> None:
    example_spec["rollout"]["max_concurrency"] = value
    assert parse(example_spec).rollout.max_concurrency == value


@pytest.mark.parametrize("value", ["0", "0%", "101%", "abc", "", "-1", "01", "1000000", "25 %", "25%%", 25])
def test_bad_max_concurrency(example_spec: dict[str, Any], value: Any) -> None:
    example_spec["rollout"]["max_concurrency"] = value
    assert "rollout.max_concurrency" in error_of(example_spec)


@pytest.mark.parametrize("value", ["0", "3", "0%", "10%", "100%"])
def test_good_max_errors(example_spec: dict[str, Any], value: str) -> None:
    example_spec["rollout"]["max_errors"] = value
    assert parse(example_spec).rollout.max_errors == value


@pytest.mark.parametrize("value", ["101%", "-1", "abc", "", "1000000", "100%%"])
def test_bad_max_errors(example_spec: dict[str, Any], value: str) -> None:
    example_spec["rollout"]["max_errors"] = value
    assert "rollout.max_errors" in error_of(example_spec)


@pytest.mark.parametrize(("section", "field", "value"), [
    ("rollout", "timeout_seconds", 59), ("rollout", "timeout_seconds", 172801),
    ("retry", "max_attempts", 0), ("retry", "max_attempts", 11), ("retry", "base_seconds", 0),
    ("retry", "cap_seconds", 86401),
])
def test_bad_rollout_and_retry_numbers(example_spec: dict[str, Any], section: str, field: str, value: int) -> None:
    example_spec.setdefault(section, {})[field] = value
    assert f"{section}.{field}" in error_of(example_spec)


def test_a_bad_image_in_a_full_spec_is_an_invalid_revision(example_spec: dict[str, Any]) -> None:
    example_spec["image"] = "Web:latest"
    error_of(example_spec)


# ------------------------------------------------------------------------------------------------ property

_KEYS = st.sampled_from(["target", "instances", "container", "tags", "ids", "name", "ports", "env", "image",
                         "health_check", "path", "port", "rollout", "max_concurrency", "max_errors", "retry",
                         "codedeploy", "application", "deployment_group", "allow_mutable_tags"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["web", "i-0123456789abcdef0", "5000:5000", "/health", "25%", "nginx:1"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=8), children,
                                                                      max_size=5),
    max_leaves=25,
)


@given(st.one_of(_JSON.map(json.dumps), st.text(max_size=60)))
@settings(max_examples=400, deadline=None)
def test_arbitrary_user_parameters_raise_nothing_but_invalid_revision(raw: str) -> None:
    try:
        result = parse_pipeline_parameters(raw)
    except InvalidRevision:
        return
    assert isinstance(result, (TargetSpec, TargetReference))


@given(st.dictionaries(st.sampled_from([*EXAMPLE_SPEC, "retry", "codedeploy", "bogus"]), _JSON, max_size=8))
@settings(max_examples=300, deadline=None)
def test_example_spec_with_arbitrary_sections_raises_nothing_but_invalid_revision(overrides: dict[str, Any]) -> None:
    try:
        parse({**EXAMPLE_SPEC, **overrides})
    except InvalidRevision:
        pass
