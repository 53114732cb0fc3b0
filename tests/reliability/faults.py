"""Fault injection at botocore's edge: record which AWS calls a handler makes, then make the Nth one fail.

Two layers:
- `aws_calls` wraps `BaseClient._make_api_call`, above botocore's retries: a fault there is what berth sees once
  botocore has given up. A ClientError carrying AWS's error shape, a ReadTimeoutError before the call leaves, or a
  lost answer ("LostAnswer": the call reaches AWS, which carries it out, and its answer never comes back).
- `lost_answers` wraps the endpoint, below botocore's retries: the request reaches AWS (moto and localaws carry it
  out) and the answer is lost on the way back, so botocore's retry handler sees a read timeout or a closed connection
  and, where the client allows, sends the same request again. That is how a call without an idempotency token
  (SendCommand, CreateDeployment) turns into two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.endpoint import Endpoint
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

FAULTS = {
    "Throttling": ("ThrottlingException", 400, "Rate exceeded"),
    "InternalError": ("InternalFailure", 500, "We encountered an internal error. Please try again."),
    "AccessDenied": ("AccessDeniedException", 403, "User is not authorized to perform this action"),
}
# Faults that are not an AWS error answer: a timeout before the call reaches AWS, an answer lost after AWS acted.
NETWORK_FAULTS = ("Timeout", "LostAnswer")


@dataclass
class CallLog:
    calls: list[str] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)   # each call's parameters, in the same order
    fail_at: int | None = None
    fault: str = "Throttling"
    only: frozenset[str] | None = None      # services whose calls count (None: all)

    def counts(self, service: str) -> bool:
        return self.only is None or service in self.only


@contextmanager
def aws_calls(fail_at: int | None = None, fault: str = "Throttling",
              only: frozenset[str] | None = None) -> Iterator[CallLog]:
    """Record every AWS call made inside the block as "service.Operation"; make call number `fail_at` fail."""
    log = CallLog(fail_at=fail_at, fault=fault, only=only)
    original = BaseClient._make_api_call

    def wrapped(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        if log.counts(service):
            log.calls.append(f"{service}.{operation_name}")
            log.params.append(dict(api_params))
            if log.fail_at is not None and len(log.calls) - 1 == log.fail_at:
                if log.fault == "Timeout":
                    raise ReadTimeoutError(endpoint_url=f"https://{service}.amazonaws.com")
                if log.fault == "LostAnswer":
                    original(self, operation_name, api_params)      # AWS carries it out ...
                    raise ReadTimeoutError(endpoint_url=f"https://{service}.amazonaws.com")   # ... nobody hears
                code, status, message = FAULTS[log.fault]
                raise ClientError({"Error": {"Code": code, "Message": message},
                                   "ResponseMetadata": {"HTTPStatusCode": status}}, operation_name)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield log
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@dataclass
class LostAnswers:
    operation: str                 # e.g. "SendCommand"
    times: int                     # how many answers to lose
    lost: int = 0                  # answers lost so far
    reached: int = 0               # requests that reached AWS (each one carried out)


@contextmanager
def lost_answers(operation: str, times: int = 1, closed: bool = False) -> Iterator[LostAnswers]:
    """Lose the answers of the first `times` requests of `operation` after AWS carried them out, below botocore's
    retry handler: a read timeout (or, with `closed`, a connection closed mid-answer) is what botocore then sees."""
    state = LostAnswers(operation, times)
    original = Endpoint._do_get_response

    def wrapped(self: Endpoint, request: Any, operation_model: Any, context: Any) -> Any:
        answer = original(self, request, operation_model, context)
        if operation_model.name != operation:
            return answer
        state.reached += 1
        response, error = answer
        if error is None and response is not None and response[0].status_code < 300 and state.lost < state.times:
            state.lost += 1
            if closed:
                return None, ConnectionClosedError(endpoint_url=request.url)
            return None, ReadTimeoutError(endpoint_url=request.url)
        return answer

    Endpoint._do_get_response = wrapped  # type: ignore[method-assign]
    try:
        yield state
    finally:
        Endpoint._do_get_response = original  # type: ignore[method-assign]


class Clock:
    """berth's clock, moved forward by hand: a later continuation or refresh comes minutes after the first. AWS's own
    clock (moto's) is not moved."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from chalicelib import wiring

        self.ahead = timedelta()
        monkeypatch.setattr(wiring, "utc_now", lambda: datetime.now(UTC) + self.ahead)

    def advance(self, seconds: float) -> None:
        self.ahead += timedelta(seconds=seconds)
