"""CloudWatch alarms as berth reads them: moto answers DescribeAlarms and SetAlarmState (botocore validates both),
so a test can put an alarm into ALARM at a chosen moment. The same assertions hold berth's AlarmWatch adapter to it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from localaws_testkit import client

from chalicelib.adapters.cloudwatch import AlarmWatch
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.rollout import MAX_ALARMS_PER_CALL, AlarmState


@pytest.fixture
def cloudwatch(aws: None) -> Any:
    return client("cloudwatch")


def put_alarm(cloudwatch: Any, name: str) -> None:
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace="web", MetricName="5xx", Statistic="Sum", Period=60,
                                EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")


def test_alarm_states_and_reasons_as_set_at_a_chosen_moment(cloudwatch: Any) -> None:
    put_alarm(cloudwatch, "web-5xx")
    put_alarm(cloudwatch, "web-latency")
    watch = AlarmWatch(cloudwatch)
    assert {alarm.name: alarm.state for alarm in watch.states(["web-5xx", "web-latency"])} == {
        "web-5xx": "OK", "web-latency": "OK"}

    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx above 10 for 1 minute")
    cloudwatch.set_alarm_state(AlarmName="web-latency", StateValue="INSUFFICIENT_DATA", StateReason="no data")

    assert sorted(watch.states(["web-latency", "web-5xx"]), key=lambda a: a.name) == [
        AlarmState("web-5xx", "ALARM", "5xx above 10 for 1 minute"),
        AlarmState("web-latency", "INSUFFICIENT_DATA", "no data")]


def test_an_alarm_that_does_not_exist_is_left_out(cloudwatch: Any) -> None:
    put_alarm(cloudwatch, "web-5xx")
    assert [alarm.name for alarm in AlarmWatch(cloudwatch).states(["web-5xx", "no-such-alarm"])] == ["web-5xx"]


def test_a_hundred_and_one_alarms_take_two_calls_of_at_most_a_hundred_names(cloudwatch: Any) -> None:
    names = [f"alarm-{n:03d}" for n in range(101)]
    for name in names:
        put_alarm(cloudwatch, name)
    sizes: list[int] = []
    cloudwatch.meta.events.register("provide-client-params.monitoring.DescribeAlarms",
                                    lambda params, **_: sizes.append(len(params["AlarmNames"])))
    assert sorted(alarm.name for alarm in AlarmWatch(cloudwatch).states(names)) == names
    assert sizes == [100, 1]


def test_the_service_model_says_a_hundred_names_a_call(cloudwatch: Any) -> None:
    # botocore does not check a list's length before sending, so the bound comes from the model itself.
    shape = cloudwatch.meta.service_model.operation_model("DescribeAlarms").input_shape.members["AlarmNames"]
    assert shape.metadata["max"] == MAX_ALARMS_PER_CALL == 100
    with pytest.raises(ParamValidationError):
        cloudwatch.describe_alarms(AlarmNames="web-5xx")


def test_an_aws_error_becomes_a_named_failure(cloudwatch: Any) -> None:
    with Stubber(cloudwatch) as stub:
        stub.add_client_error("describe_alarms", service_error_code="Throttling", service_message="Rate exceeded",
                              http_status_code=400)
        with pytest.raises(AwsCallFailed) as raised:
            AlarmWatch(cloudwatch).states(["web-5xx"])
    assert raised.value.message == "CloudWatch DescribeAlarms failed with Throttling: Rate exceeded"
