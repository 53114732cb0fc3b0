"""berth's own events (chalicelib/domain/notifications.py): what each says, the PutEvents entries, and the documented
schema (docs/notifications.md) held to the code."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.domain import notifications as n
from chalicelib.domain.deployment import Attempt, Decision, Deployment, DeploymentStatus, Revision
from chalicelib.domain.spec import TargetSpec

from .conftest import EXAMPLE_SPEC

T0 = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
SPEC = TargetSpec.model_validate({k: v for k, v in EXAMPLE_SPEC.items() if k != "image"})
NEW, OLD = "sha256:" + "b" * 64, "sha256:" + "a" * 64


def deployment(status: DeploymentStatus = DeploymentStatus.FAILED, trigger: str = "api") -> Deployment:
    return Deployment(
        deployment_id="d-1", target="web-prod", spec=SPEC, revision=Revision(image="registry/web:2", digest=NEW),
        previous_revision=Revision(image="registry/web:1", digest=OLD), trigger=trigger,  # type: ignore[arg-type]
        caller="arn:aws:iam::123456789012:user/alice", status=status, created_at=T0,
        updated_at=T0 + timedelta(minutes=3),
        attempts=[Attempt(number=1, started_at=T0, command_id="c-1"), Attempt(number=2, started_at=T0)],
        history=[Decision(at=T0, action="failed", detail="1 of 2 instances failed: i-1 (health): exit 40")])


def test_an_end_says_what_where_who_and_links_the_latest_command() -> None:
    [event] = n.deployment_ended(deployment(), "eu-west-1")

    assert event.detail_type == "Deployment Failed" and event.at == T0 + timedelta(minutes=3)
    assert event.detail == {
        "target": "web-prod", "deployment_id": "d-1", "status": "FAILED", "digest": NEW,
        "image": f"registry/web@{NEW}", "previous_digest": OLD, "trigger": "api",
        "caller": "arn:aws:iam::123456789012:user/alice",
        "reason": "1 of 2 instances failed: i-1 (health): exit 40", "command_id": "c-1",
        "console_link": "https://eu-west-1.console.aws.amazon.com/systems-manager/run-command/c-1",
        "at": "2026-11-27T17:03:00+00:00"}


def test_each_final_status_has_its_event_and_a_cancel_has_none() -> None:
    kinds = {status: [e.detail_type for e in n.deployment_ended(deployment(status), "us-east-1")]
             for status in DeploymentStatus}
    S = DeploymentStatus
    assert kinds == {S.SUCCEEDED: ["Deployment Succeeded"], S.FAILED: ["Deployment Failed"],
                     S.ROLLED_BACK: ["Deployment Rolled Back"], S.CANCELLED: [], S.PENDING: [], S.IN_PROGRESS: [],
                     S.RETRYING: []}


def test_a_join_end_also_says_whether_the_instance_joined() -> None:
    joined = deployment(DeploymentStatus.SUCCEEDED, trigger="join")
    joined.spec = SPEC.model_copy(update={"instances": SPEC.instances.model_copy(update={"ids": ["i-new"]})})
    events = n.deployment_ended(joined, "us-east-1")
    assert [e.detail_type for e in events] == ["Deployment Succeeded", "Instance Joined"]
    assert events[1].detail["reason"].startswith("instance i-new joined: ")


def test_events_without_a_deployment_keep_every_key() -> None:
    frozen = n.target_frozen("web-prod", "release freeze", "arn:aws:iam::1:user/bob", T0 + timedelta(hours=2), T0,
                             "us-east-1")
    assert set(frozen.detail) == set(n.DETAIL_KEYS)
    assert frozen.detail["deployment_id"] is None and frozen.detail["console_link"] is None
    assert frozen.detail["reason"] == "release freeze (until 2026-11-27T19:00:00+00:00)"
    retry = n.retry_scheduled("web-prod", "cd-lineage", 2, T0, "transient", T0, "us-east-1")
    assert retry.detail["deployment_id"] == "cd-lineage" and set(retry.detail) == set(n.DETAIL_KEYS)


def test_a_long_reason_is_cut() -> None:
    event = n.retries_exhausted("web-prod", "d-1", "x" * 10_000, T0, "us-east-1")
    assert len(event.detail["reason"]) == n.MAX_MESSAGE


def test_entries_are_putevents_entries_in_batches_of_ten() -> None:
    events = [n.breaker_opened("web-prod", f"failure {i}", T0, "us-east-1") for i in range(23)]
    entries = n.entries(events, "berth-bus")
    assert entries[0] == {"Source": "berth", "DetailType": "Breaker Opened", "EventBusName": "berth-bus", "Time": T0,
                          "Detail": json.dumps(events[0].detail, sort_keys=True)}
    assert [len(batch) for batch in n.batches(entries)] == [10, 10, 3]
    assert [e for batch in n.batches(entries) for e in batch] == entries


def _table_after(marker: str) -> list[str]:
    lines = DOCS.read_text().split(marker, 1)[1].splitlines()[1:]
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append(line)
    return [re.sub(r"`", "", row.split("|")[1]).strip() for row in table[2:]]


def test_the_documented_detail_types_and_keys_are_the_codes() -> None:
    assert _table_after("<!-- detail-types:") == list(n.DETAIL_TYPES)
    assert _table_after("<!-- detail-keys:") == list(n.DETAIL_KEYS)


def test_the_documented_example_has_every_key() -> None:
    example = json.loads(DOCS.read_text().split("```json", 1)[1].split("```", 1)[0])
    assert example["source"] == n.SOURCE and example["detail-type"] in n.DETAIL_TYPES
    assert list(example["detail"]) == list(n.DETAIL_KEYS)
