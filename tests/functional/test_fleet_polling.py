"""Following a command on a fleet: each running poll reads SSM's counts (one ListCommands, whatever the fleet size).
Once the command is over, a clean success (Success/Success, as many targets as berth expected) needs nothing more;
anything else has every instance's result read, once, a page of 50 at a time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

import localaws
from app import app
from localaws import InstanceOutcome
from tests.conftest import World
from tests.functional.support import TAGS, invoke, jid, results, spec
from tests.reliability.faults import aws_calls
from tools import local_pipeline

FLEET = 120   # three pages of ListCommandInvocations


def follow_job(world: World, job_id: str, params: dict[str, Any]
               ) -> tuple[list[local_pipeline.Reply], list[list[tuple[str, dict[str, Any]]]]]:
    """The job to its end, and the calls of each invocation."""
    bucket, key = world.put_artifact({"imagedefinitions.json": json.dumps(
        [{"name": "web", "imageUri": world.image_uri("web", "v1")}])})
    per_invocation: list[list[tuple[str, dict[str, Any]]]] = []

    def invoke_recorded(event: dict[str, Any]) -> None:
        with aws_calls() as log:
            invoke(event)
        per_invocation.append([(call.split(".", 1)[1], params) for call, params in zip(log.calls, log.params,
                                                                                         strict=True)])

    replies = local_pipeline.run_job(invoke_recorded, results, json.dumps(params), bucket, key, max_rounds=20,
                                     first_job_id=job_id)
    return replies, per_invocation


def names(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in calls]


def test_running_polls_read_counts_and_a_clean_success_reads_no_result_page(aws: World) -> None:
    instances = aws.launch(FLEET, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))

    replies, per_invocation = follow_job(aws, jid("fleet-counts"), spec())

    assert [reply.result["type"] for reply in replies] == ["success"] * len(replies)
    polls, final = per_invocation[1:-1], per_invocation[-1]
    assert polls, "the command should still run at the first continuation"
    for calls in [*polls, final]:
        assert names(calls).count("ListCommands") == 1 and "ListCommandInvocations" not in names(calls)
    # 25% at a time, each look at the command one step on: the counts move, so does the percentage CodePipeline shows.
    percents = [reply.result["executionDetails"]["percentComplete"] for reply in replies[1:-1]]
    assert percents == [0, 25, 50, 75], percents
    assert replies[-1].result["executionDetails"]["summary"].endswith(f"{FLEET} succeeded, 0 failed, 0 pending of "
                                                                      f"{FLEET} instances")

    from chalicelib.wiring import store
    with Client(app, stage_name="test"):
        record = store().get_deployment(replies[-1].result["outputVariables"]["deployment_id"])
    attempt = record.attempts[-1]
    assert record.status.value == "SUCCEEDED" and sorted(attempt.expected_instances) == instances
    assert attempt.instances == {}      # SSM said it of every instance: nothing per instance to keep
    assert attempt.tally is not None and attempt.tally.model_dump() == {
        "total": FLEET, "succeeded": FLEET, "failed": 0, "pending": 0}


def test_fewer_targets_than_expected_has_the_results_read_to_find_who_never_ran(aws: World) -> None:
    """SSM targeted one instance less than berth expected: every result is read (statuses only, as none failed) to
    name the instance that never ran the command."""
    instances = aws.launch(FLEET, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    localaws.set_outcome(instances[99], InstanceOutcome(skip=True))

    replies, per_invocation = follow_job(aws, jid("fleet-never-ran"), spec(retry={"max_attempts": 1}))

    assert replies[-1].result["type"] == "failure"
    assert f"{instances[99]} never ran the command" in replies[-1].result["failureDetails"]["message"]
    pages = [params for name, params in per_invocation[-1] if name == "ListCommandInvocations"]
    assert len(pages) == 3 and all(params["Details"] is False for params in pages)


def test_a_failure_on_a_fleet_reads_exit_codes_and_output(aws: World) -> None:
    instances = aws.launch(FLEET, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    localaws.set_outcome(instances[70], InstanceOutcome(status="Failed", response_code=21, polls_before_done=1,
                                                        stdout="berth-step: pull\n", stderr="manifest unknown"))

    replies, per_invocation = follow_job(aws, jid("fleet-failure"), spec(
        rollout={"max_concurrency": "100%", "max_errors": "0"}, retry={"max_attempts": 1}))

    assert replies[-1].result["type"] == "failure"
    message = replies[-1].result["failureDetails"]["message"]
    assert f"{instances[70]} in step pull, exit 21" in message and "manifest unknown" in message
    final = per_invocation[-1]
    pages = [params for name, params in final if name == "ListCommandInvocations"]
    assert len(pages) == 3 and all(params["Details"] is True for params in pages)


def test_an_instance_that_did_not_succeed_behind_clean_counts_is_read_in_full(aws: World) -> None:
    """Counts without errors can still hide an instance that did not succeed (cancelled ones count as neither):
    the statuses-only read shows it, and the pages are read again with exit codes and output."""
    instances = aws.launch(60, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    localaws.set_outcome(instances[5], InstanceOutcome(status="Cancelled", polls_before_done=1))

    replies, per_invocation = follow_job(aws, jid("fleet-cancelled"), spec(
        rollout={"max_concurrency": "100%", "max_errors": "0"}, retry={"max_attempts": 1}))

    assert replies[-1].result["type"] == "failure"
    assert f"{instances[5]} SSM status Cancelled" in replies[-1].result["failureDetails"]["message"]
    details = [params["Details"] for name, params in per_invocation[-1] if name == "ListCommandInvocations"]
    assert details == [False, False, True, True]


def test_a_record_of_thousands_of_failed_instances_fits_in_one_item(aws: World) -> None:
    """Three attempts on 1000 instances that each printed 600 characters nothing like the others': the record keeps
    every instance's status and step, and few enough output tails to stay under DynamoDB's 400 KB item limit."""
    import random
    from datetime import UTC, datetime

    from chalicelib.adapters.store import DeploymentStore
    from chalicelib.domain.deployment import Attempt, Deployment, InstanceResult, Revision
    from chalicelib.domain.errors import AwsCallFailed
    from chalicelib.domain.progress import keep_tails
    from chalicelib.domain.spec import TargetSpec
    from tests.api.support import TABLE

    noise = random.Random(7)
    now = datetime.now(UTC)
    ids = [f"i-{n:017x}" for n in range(1000)]

    def results() -> dict[str, InstanceResult]:
        return {i: InstanceResult(instance_id=i, status="Failed", response_code=21, step="pull",
                                  output_tail="".join(noise.choice("abcdefghijklmnopqrstuvwxyz0123456789 \n")
                                                      for _ in range(600))) for i in ids}

    def record(deployment_id: str, bounded: bool) -> Deployment:
        return Deployment(
            deployment_id=deployment_id, target="web", trigger="api", caller="test", created_at=now, updated_at=now,
            spec=TargetSpec.model_validate({"target": "web", "instances": {"tags": TAGS},
                                            "container": {"name": "web"}}),
            revision=Revision(image="registry.example.com/web:v1", digest="sha256:" + "ab" * 32),
            attempts=[Attempt(number=n, started_at=now, expected_instances=ids,
                              instances=keep_tails(results()) if bounded else results()) for n in (1, 2, 3)])

    store = DeploymentStore(aws.client("dynamodb"), TABLE)
    assert store.start_deployment(record("d-bounded", bounded=True), 600) is None
    saved = store.get_deployment("d-bounded")
    assert len(saved.attempts[-1].instances) == 1000
    assert sum(1 for result in saved.attempts[-1].instances.values() if result.output_tail) == 50
    assert {result.step for result in saved.attempts[-1].instances.values()} == {"pull"}
    with pytest.raises(AwsCallFailed, match="size"):      # the same record with every tail kept does not fit
        store.start_deployment(record("d-unbounded", bounded=False).model_copy(update={"target": "api"}), 600)


def test_a_failure_on_more_instances_than_the_record_keeps_tails_of_is_classified_from_all(aws: World) -> None:
    """70 instances without Docker: the retry decision sees every instance's output, not the 50 the record keeps, so
    the failure is remediable (install Docker, retry) rather than an unexplained exit 127."""
    instances = aws.launch(70, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(status="Failed", response_code=127, polls_before_done=1,
                                                 stderr="start_container.sh: line 3: docker: command not found"))
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    token = None
    for round_number in range(4):
        event = local_pipeline.job_event(json.dumps(spec(rollout={"max_concurrency": "100%", "max_errors": "100%"})),
                                         bucket, key, token, jid(f"fleet-docker-{round_number}"))
        invoke(event)
        token = results(jid(f"fleet-docker-{round_number}"))[0].get("continuationToken")

    from chalicelib.wiring import store
    with Client(app, stage_name="test"):
        record = store().get_deployment(json.loads(token or "{}")["d"])
    assert record.status.value == "RETRYING", record.message
    assert "(remediable)" in record.history[-1].cause
    kept = [result for result in record.attempts[-1].instances.values() if result.output_tail]
    assert len(record.attempts[-1].instances) == len(instances) and len(kept) == 50
