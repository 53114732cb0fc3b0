"""Retry schedule payloads: one typed model per kind, read once at the retry_deployment edge. Schedules already created
in AWS carry today's JSON: it must keep parsing, and berth must keep writing exactly it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidEvent
from chalicelib.domain.retry_payload import (
    CodeDeployRetry,
    LookAgain,
    PipelineStageRetry,
    RetryPayload,
    SsmRetry,
    parse_retry_payload,
)

EXECUTION = "12345678-1234-5678-abcd-12345678abcd"
# The payloads berth wrote before the typed models, byte for byte as their schedules' Input carries them.
WRITTEN_BEFORE = [
    ('{"kind": "ssm", "deployment_id": "d-20240912101500-1a2b3c4d", "attempt": 2}',
     SsmRetry(deployment_id="d-20240912101500-1a2b3c4d", attempt=2)),
    ('{"kind": "codedeploy", "deployment_id": "d-ABCDEF123", "attempt": 2}',
     CodeDeployRetry(deployment_id="d-ABCDEF123", attempt=2)),
    ('{"kind": "codedeploy", "deployment_id": "d-ABCDEF123", "attempt": 2, "wait": 1}',
     CodeDeployRetry(deployment_id="d-ABCDEF123", attempt=2, wait=1)),
    ('{"kind": "pipeline", "pipeline": "myPipeline", "stage": "Prod", "execution_id": "' + EXECUTION + '", '
     '"attempt": 1}', PipelineStageRetry(pipeline="myPipeline", stage="Prod", execution_id=EXECUTION, attempt=1)),
]


@pytest.mark.parametrize("written, task", WRITTEN_BEFORE)
def test_schedules_already_in_aws_parse_into_their_kind(written: str, task: Any) -> None:
    assert parse_retry_payload(json.loads(written)) == task


@pytest.mark.parametrize("written, task", WRITTEN_BEFORE)
def test_berth_writes_the_same_json_as_before(written: str, task: Any) -> None:
    assert json.dumps(task.wire()) == written


def test_a_remediation_wait_counts_up_and_keeps_the_rest() -> None:
    task = CodeDeployRetry(deployment_id="d-ABCDEF123", attempt=3)
    assert task.waited() == CodeDeployRetry(deployment_id="d-ABCDEF123", attempt=3, wait=1)
    assert task.waited().waited().wire() == {"kind": "codedeploy", "deployment_id": "d-ABCDEF123", "attempt": 3,
                                             "wait": 2}


def test_unknown_keys_are_ignored_as_they_always_were() -> None:
    assert parse_retry_payload({"kind": "ssm", "deployment_id": "d-1", "attempt": 2, "pipeline": "p"}) == SsmRetry(
        deployment_id="d-1", attempt=2)


def test_the_union_model_holds_the_task() -> None:
    payload = RetryPayload.model_validate({"kind": "codedeploy", "deployment_id": "d-X", "attempt": 2})
    assert payload.root == CodeDeployRetry(deployment_id="d-X", attempt=2)


@pytest.mark.parametrize("payload, named", [
    ({"kind": "ssm", "attempt": 2}, "retry payload of kind ssm is malformed at: deployment_id (Field required)"),
    ({"kind": "codedeploy", "deployment_id": "d-X", "attempt": 0}, "attempt (Input should be greater than or equal"),
    ({"kind": "codedeploy", "deployment_id": "d-X", "attempt": 2, "wait": -1}, "wait (Input should be greater"),
    ({"kind": "pipeline", "pipeline": "p", "stage": "Prod", "attempt": 1}, "execution_id (Field required)"),
    ({"kind": "pipeline", "pipeline": "p q", "stage": "Prod", "execution_id": EXECUTION, "attempt": 1},
     "pipeline (String should match pattern"),
    ({"kind": "reboot", "attempt": 1},
     "retry payload is malformed at: kind (one of ssm, codedeploy, pipeline, look, join)"),
    ({"deployment_id": "d-X", "attempt": 1},
     "retry payload is malformed at: kind (one of ssm, codedeploy, pipeline, look, join)"),
    ({"kind": "look", "deployment_id": "d-X", "wave": 1, "phase": "baking", "at": 1},
     "phase (String should match pattern"),
    ({"kind": "look", "deployment_id": "d-X", "wave": 0, "phase": "BAKING", "at": 1}, "wave (Input should be greater"),
    (["ssm"], "retry payload: the event is not a JSON object"),
])
def test_a_malformed_payload_names_the_field(payload: Any, named: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_retry_payload(payload)
    assert named in raised.value.message


@given(st.one_of(
    st.builds(SsmRetry, deployment_id=st.from_regex(r"d-[0-9a-f]{1,40}", fullmatch=True),
              attempt=st.integers(1, 100)),
    st.builds(CodeDeployRetry, deployment_id=st.from_regex(r"d-[A-Z0-9]{1,40}", fullmatch=True),
              attempt=st.integers(1, 100), wait=st.integers(0, 100)),
    st.builds(PipelineStageRetry, pipeline=st.from_regex(r"[A-Za-z0-9.@_-]{1,100}", fullmatch=True),
              stage=st.from_regex(r"[A-Za-z0-9.@_-]{1,100}", fullmatch=True), execution_id=st.uuids().map(str),
              attempt=st.integers(1, 100)),
    st.builds(LookAgain, deployment_id=st.from_regex(r"d-[0-9a-f]{1,40}", fullmatch=True),
              wave=st.integers(1, 100000), phase=st.sampled_from(["BAKING", "STOPPING", "DRAINING"]),
              at=st.integers(0, 2**40)),
))
def test_every_task_round_trips_through_its_wire_json(task: Any) -> None:
    assert parse_retry_payload(json.loads(json.dumps(task.wire()))) == task


LOOK = LookAgain(deployment_id="d-20261127101500-1a2b3c4d", wave=1, phase="BAKING", at=1795773600)


def test_a_look_is_written_with_its_wave_phase_and_moment() -> None:
    assert json.dumps(LOOK.wire()) == ('{"kind": "look", "deployment_id": "d-20261127101500-1a2b3c4d", "wave": 1, '
                                       '"phase": "BAKING", "at": 1795773600}')


def test_a_looks_schedule_is_named_by_its_deployment_wave_phase_and_moment() -> None:
    name = LOOK.schedule_name()
    assert name.startswith("berth-retry-look-d-20261127101500-1a2b3c4d-")   # the IAM policy's schedule/berth-retry-*
    assert len(name) <= 64 and name == LookAgain.model_validate(LOOK.wire()).schedule_name()
    others = [LOOK.model_copy(update=change) for change in ({"wave": 2}, {"phase": "STOPPING"}, {"at": 1795773660},
                                                            {"deployment_id": "d-20261127101500-1a2b3c4e"})]
    assert len({name, *(other.schedule_name() for other in others)}) == 5


def test_a_join_look_round_trips_and_refuses_a_hostile_instance_id() -> None:
    from chalicelib.domain.retry_payload import JoinLook

    wire = {"kind": "join", "instance_id": "i-0123456789abcdef0", "launch": 1700000000, "attempt": 3}
    assert parse_retry_payload(wire) == JoinLook(instance_id="i-0123456789abcdef0", launch=1700000000, attempt=3)
    assert JoinLook.model_validate(wire).wire() == wire
    with pytest.raises(InvalidEvent) as raised:
        parse_retry_payload({**wire, "instance_id": "i-0; rm -rf /"})
    assert "instance_id" in raised.value.message
