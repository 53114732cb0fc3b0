"""The progressive rollout's part of the spec: canary, alarms, bakes and automatic rollback, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.spec import CanarySpec, RolloutSpec
from tests.unit.spec_helpers import error_of, parse


def with_rollout(example_spec: dict[str, Any], **rollout: Any) -> dict[str, Any]:
    example_spec["rollout"].update(rollout)
    return example_spec


def test_the_issue_example_parses(example_spec: dict[str, Any]) -> None:
    spec = parse(with_rollout(example_spec, canary={"instances": 1, "bake_seconds": 300},
                              alarms=["web-5xx-high", "web-p99-latency"], bake_seconds=120, auto_rollback=True))
    assert spec.rollout == RolloutSpec(max_concurrency="25%", max_errors="0",
                                       canary=CanarySpec(instances=1, bake_seconds=300),
                                       alarms=["web-5xx-high", "web-p99-latency"], bake_seconds=120)
    assert spec.rollout.in_waves


def test_without_the_new_fields_the_rollout_is_as_before(example_spec: dict[str, Any]) -> None:
    rollout = parse(example_spec).rollout
    assert (rollout.canary, rollout.alarms, rollout.bake_seconds, rollout.auto_rollback) == (None, None, 0, True)
    assert not rollout.in_waves


@pytest.mark.parametrize("instances", [1, 100000, "1%", "10%", "100%"])
def test_good_canary_sizes(example_spec: dict[str, Any], instances: Any) -> None:
    assert parse(with_rollout(example_spec, canary={"instances": instances})).rollout.canary == CanarySpec(
        instances=instances, bake_seconds=0)


@pytest.mark.parametrize("instances", [0, -1, 100001, True, False, 1.0, 1.5, "1", "0%", "101%", "10 %", "%", "",
                                       "10%\n", None, [1], {"n": 1}])
def test_hostile_canary_sizes_are_refused_naming_the_field(example_spec: dict[str, Any], instances: Any) -> None:
    message = error_of(with_rollout(example_spec, canary={"instances": instances}))
    assert message == ('UserParameters are not valid: rollout.canary.instances: give a count of 1 to 100000 '
                       'instances or a percent from "1%" to "100%"')


@pytest.mark.parametrize(("canary", "field"), [
    ({}, "rollout.canary.instances: Field required"),
    ({"instances": 1, "bake_seconds": -1}, "rollout.canary.bake_seconds"),
    ({"instances": 1, "bake_seconds": 3601}, "rollout.canary.bake_seconds"),
    ({"instances": 1, "bake_seconds": "60"}, "rollout.canary.bake_seconds"),
    ({"instances": 1, "bake_seconds": True}, "rollout.canary.bake_seconds"),
    ({"instances": 1, "bake": 60}, "rollout.canary.bake: unknown key"),
    ([1], "rollout.canary"),
    (1, "rollout.canary"),
])
def test_bad_canaries(example_spec: dict[str, Any], canary: Any, field: str) -> None:
    assert field in error_of(with_rollout(example_spec, canary=canary))


@pytest.mark.parametrize("alarms", [["a"], ["web-5xx-high", "web p99 latency / eu"], ["x" * 255],
                                    [f"alarm-{n}" for n in range(100)], ["ümlaut-alarm"]])
def test_good_alarms(example_spec: dict[str, Any], alarms: list[str]) -> None:
    assert parse(with_rollout(example_spec, alarms=alarms)).rollout.alarms == alarms


@pytest.mark.parametrize(("alarms", "expected"), [
    ([], "rollout.alarms: List should have at least 1 item"),
    ([f"alarm-{n}" for n in range(101)], "rollout.alarms: List should have at most 100 items"),
    ([""], "rollout.alarms: alarm 0: CloudWatch alarm names are 1 to 255 characters"),
    (["ok", "x" * 256], "rollout.alarms: alarm 1: CloudWatch alarm names are 1 to 255 characters"),
    (["a\nb"], "with no control characters"),
    (["a\x00b"], "with no control characters"),
    (["a\x7fb"], "with no control characters"),
    (["tab\there"], "with no control characters"),
    (["a", "a"], "rollout.alarms: 'alarms' names an alarm twice"),
    ([3], "rollout.alarms.0: Input should be a valid string"),
    ("web-5xx", "rollout.alarms: Input should be a valid list"),
    ({"name": "x"}, "rollout.alarms: Input should be a valid list"),
])
def test_bad_alarms(example_spec: dict[str, Any], alarms: Any, expected: str) -> None:
    assert expected in error_of(with_rollout(example_spec, alarms=alarms))


def test_an_alarm_name_is_never_echoed(example_spec: dict[str, Any]) -> None:
    assert "hunter2" not in error_of(with_rollout(example_spec, alarms=["hunter2\n"]))


@pytest.mark.parametrize(("field", "value"), [
    ("bake_seconds", -1), ("bake_seconds", 3601), ("bake_seconds", "120"), ("bake_seconds", 1.5),
    ("bake_seconds", None), ("auto_rollback", "true"), ("auto_rollback", 1), ("auto_rollback", None),
])
def test_bad_bake_and_auto_rollback(example_spec: dict[str, Any], field: str, value: Any) -> None:
    assert f"rollout.{field}" in error_of(with_rollout(example_spec, **{field: value}))


def test_alarms_alone_make_a_rollout_in_waves(example_spec: dict[str, Any]) -> None:
    rollout = parse(with_rollout(example_spec, alarms=["a"], auto_rollback=False)).rollout
    assert (rollout.in_waves, rollout.auto_rollback, rollout.canary) == (True, False, None)


def test_the_openapi_schema_carries_the_new_fields() -> None:
    schema = RolloutSpec.model_json_schema()
    properties = schema["properties"]
    assert {"canary", "alarms", "bake_seconds", "auto_rollback"} <= set(properties)
    assert properties["bake_seconds"]["maximum"] == 3600
    assert properties["alarms"]["anyOf"][0]["maxItems"] == 100
    assert schema["$defs"]["CanarySpec"]["properties"]["instances"]["oneOf"][1]["pattern"] == "^([1-9][0-9]?|100)%$"
