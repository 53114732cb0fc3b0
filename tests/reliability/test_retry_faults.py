"""Each AWS call in the retry path failing in turn: the failure event is redelivered (as EventBridge does after a
Lambda error) and berth ends with exactly one retry scheduled and a consistent record."""

from __future__ import annotations

import json
from typing import Any

import pytest

import localaws
from chalicelib.domain.retry import schedule_name
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import load_event, pipeline_job_event
from tests.functional.support import TAGS, deliver, invoke, jid, results, spec
from tests.reliability.faults import aws_calls
from tools.local_scheduler import pending

BERTH_SERVICES = frozenset({"dynamodb", "ssm", "scheduler", "ec2", "ecr", "codepipeline", "s3", "codedeploy"})


def failing_deployment(aws: World) -> tuple[str, dict[str, Any]]:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    aws.push_image("web", "v1")
    invoke(pipeline_job_event(job_id=jid("faults"), no_artifacts=True,
                              user_parameters=json.dumps(spec(image=aws.image_uri("web", "v1")))))
    deployment_id = results(jid("faults"))[0]["executionDetails"]["externalExecutionId"]
    command_id = aws.client("ssm").list_commands()["Commands"][0]["CommandId"]
    event = load_event("ssm_command_failed")
    event["detail"]["command-id"] = command_id
    return deployment_id, event


@pytest.fixture(scope="session")
def retry_calls() -> list[str]:
    """The calls one failure event makes, recorded once on a clean run (no faults), in an account of its own."""
    from moto import mock_aws

    from chalicelib import clients
    from tests.conftest import REGION, TABLE
    from tools.provision import provision

    localaws.install()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "BERTH_TABLE": TABLE}.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            clients.reset_clients()
            world = World()
            provision("test", world.client("dynamodb"))
            _, event = failing_deployment(world)
            with aws_calls(only=BERTH_SERVICES) as log:
                deliver(event)
        clients.reset_clients()
    return log.calls


# The retry path's calls, in order: read the command index and the record, list the invocations and the command,
# fetch the failed instance's full output, read the target (breaker), hold the target until the retry is due (one
# transaction), create the schedule, save the record, then the breaker bookkeeping (read, update). A change to the
# path changes this number and the test below says so.
RETRY_PATH_CALLS = 11


@pytest.mark.parametrize("index", range(RETRY_PATH_CALLS))
@pytest.mark.parametrize("fault", ["Throttling", "InternalError", "Timeout", "LostAnswer"])
def test_any_call_failing_loses_no_decision_and_never_retries_twice(retry_calls: list[str], aws: World, index: int,
                                                                    fault: str) -> None:
    deployment_id, event = failing_deployment(aws)

    with aws_calls(fail_at=index, fault=fault, only=BERTH_SERVICES) as log:
        try:
            deliver(event)
            delivered = True
        except Exception:
            delivered = False
    assert log.calls[index] == retry_calls[index]
    if not delivered:
        deliver(event)            # EventBridge delivers again after a failed invocation
    deliver(event)                # ... and may deliver a duplicate anyway

    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        record = store().get_deployment(deployment_id)
    assert record.status.value == "RETRYING", (retry_calls[index], record.status, record.message)
    assert [d.action for d in record.history].count("retry-scheduled") == 1
    assert [name for name, _ in pending(aws.client("scheduler"))] == [schedule_name(deployment_id, 2)]


def test_the_retry_path_is_what_the_fault_matrix_covers(retry_calls: list[str]) -> None:
    assert len(retry_calls) == RETRY_PATH_CALLS, retry_calls
    assert "scheduler.CreateSchedule" in retry_calls
    assert retry_calls.index("dynamodb.TransactWriteItems") < retry_calls.index("scheduler.CreateSchedule")
