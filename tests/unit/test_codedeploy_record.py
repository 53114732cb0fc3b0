"""The CodeDeploy record summarises instance events: one DynamoDB item at any fleet size."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.deployment import (
    MAX_FAILED_INSTANCES,
    MAX_INSTANCE_HISTORY,
    MAX_SEEN_EVENTS,
    MAX_TRACKED_INSTANCES,
    CodeDeployRecord,
    after_state_event,
)

AT = datetime(2024, 9, 12, 10, 15, tzinfo=UTC)


def fresh() -> CodeDeployRecord:
    return CodeDeployRecord(deployment_id="d-ABCDEF123", application="app", group="group", lineage="d-ABCDEF123")


def test_a_deployment_event_sets_the_state_and_enters_the_history() -> None:
    record = after_state_event(fresh(), "e1", "FAILURE", None, False, AT)
    assert record.state == "FAILURE" and record.instance_events == {}
    assert [(d.action, d.detail, d.cause) for d in record.history] == [("state-failure", "deployment FAILURE",
                                                                       "event e1")]


def test_instance_events_are_counted_and_the_first_instances_kept_by_id() -> None:
    record = fresh()
    for event, (instance, state) in enumerate([("i-1", "START"), ("i-2", "START"), ("i-1", "SUCCESS"),
                                               ("i-2", "FAILURE"), ("i-2", "FAILURE")]):
        record = after_state_event(record, f"e{event}", state, instance, True, AT)
    assert record.state == "START"                                   # instance events leave the deployment's state
    assert record.instance_events == {"START": 2, "SUCCESS": 1, "FAILURE": 2}
    assert record.instances == {"i-1": "SUCCESS", "i-2": "FAILURE"}
    assert record.failed_instances == ["i-2"]
    assert [d.detail for d in record.history][-1] == "instance i-2 FAILURE"


def test_ten_thousand_instances_with_long_ids_keep_the_record_small() -> None:
    record = fresh()
    for n in range(10_000):
        instance = f"arn:aws:codedeploy:us-east-1:123456789012:instance/{'x' * 150}{n:08d}"
        for state in ("START", "FAILURE"):
            record = after_state_event(record, f"{'e' * 120}{n:08d}{state}", state, instance, True, AT)
    assert record.instance_events == {"START": 10_000, "FAILURE": 10_000}
    assert len(record.instances) == MAX_TRACKED_INSTANCES
    assert len(record.failed_instances) == MAX_FAILED_INSTANCES
    assert len(record.history) == MAX_INSTANCE_HISTORY and len(record.seen_events) == MAX_SEEN_EVENTS
    assert len(record.model_dump_json()) < 120_000                    # a DynamoDB item holds 400 KB
