"""EventPublisher: the in-memory fake (tests/fakes/events.py) and the adapter on moto publish alike; the adapter sends
ten entries a call and turns failed entries (FailedEntryCount) into AwsCallFailed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib.adapters.events import EventPublisher
from chalicelib.domain.errors import AwsCallFailed
from chalicelib.domain.notifications import Notification, breaker_opened
from tests.fakes.events import FakeEventPublisher

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
EVENTS = [breaker_opened("web-prod", f"failure {i}", NOW, "us-east-1") for i in range(12)]


def captured_on_moto(notifications: list[Notification]) -> list[dict[str, Any]]:
    """Publish through the adapter on moto, with a rule on the default bus that sends berth's events to a queue."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName="berth-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="berth-events", EventPattern=json.dumps({"source": ["berth"]}))
    events.put_targets(Rule="berth-events", Targets=[{"Id": "queue", "Arn": arn}])
    EventPublisher(events).publish(notifications)
    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(message["Body"]) for message in batch]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                          for i, m in enumerate(batch)])
    return [{"source": e["source"], "detail-type": e["detail-type"], "detail": e["detail"]} for e in received]


def test_the_fake_and_moto_publish_the_same_events(moto_account: None) -> None:
    fake = FakeEventPublisher()
    fake.publish(EVENTS)
    on_moto = captured_on_moto(EVENTS)
    key = lambda e: e["detail"]["reason"]  # noqa: E731
    assert sorted(on_moto, key=key) == sorted(fake.published, key=key)
    assert len(on_moto) == 12


class Recording:
    """A client that records each PutEvents call and answers as AWS does when some entries fail."""

    def __init__(self, failed_per_call: int = 0) -> None:
        self.calls: list[int] = []
        self._failed = failed_per_call

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        answers = [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}] * self._failed
        sent = [{"EventId": "e"}] * (len(Entries) - self._failed)
        return {"FailedEntryCount": self._failed, "Entries": answers + sent}


def test_batches_of_ten_and_failed_entries_are_an_error() -> None:
    ok = Recording()
    EventPublisher(ok).publish(EVENTS * 2)
    assert ok.calls == [10, 10, 4]

    failing = Recording(failed_per_call=1)
    with pytest.raises(AwsCallFailed) as caught:
        EventPublisher(failing).publish(EVENTS)
    assert failing.calls == [10, 2]            # the second batch is still sent
    assert "2 of 12 entries failed" in caught.value.message and "InternalFailure try again" in caught.value.message


def test_an_entry_moto_rejects_is_a_failed_entry(moto_account: None) -> None:
    bad = Notification("", NOW, {"reason": "no detail-type"})
    with pytest.raises(AwsCallFailed) as caught:
        EventPublisher(boto3.client("events")).publish([bad])
    assert "1 of 1 entries failed" in caught.value.message and "InvalidArgument" in caught.value.message


def test_a_bus_that_does_not_exist_is_an_error(moto_account: None) -> None:
    with pytest.raises(AwsCallFailed) as caught:
        EventPublisher(boto3.client("events"), "no-such-bus").publish(EVENTS[:1])
    assert "EventBridge PutEvents" in caught.value.message
