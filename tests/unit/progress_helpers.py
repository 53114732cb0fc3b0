"""Invocations and instance results as SSM and the record hold them: shared by the progress tests."""

from __future__ import annotations

from chalicelib.domain.deployment import InstanceResult
from chalicelib.domain.progress import Invocation

A, B, C, D = "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d"
DIGEST = "sha256:" + "5e" * 32
NEVER_RAN_TAIL = "the instance never ran the command: not managed by SSM, agent offline, or stopped"


def inv(instance_id: str, status: str = "Success", code: int | None = 0, output: str = "") -> Invocation:
    return Invocation(instance_id, status, code, output)


def result(instance_id: str, status: str = "Success", code: int | None = 0, **fields: str | None) -> InstanceResult:
    return InstanceResult(instance_id=instance_id, status=status, response_code=code, **fields)


def never_ran(instance_id: str) -> InstanceResult:
    return InstanceResult(instance_id=instance_id, status="NeverRan", output_tail=NEVER_RAN_TAIL)
