"""Fault injection at botocore's edge: record which AWS calls a handler makes, then make the Nth one fail.

The failure is raised from inside `BaseClient._make_api_call`, so it looks to berth exactly like AWS answering with an
error (a ClientError carrying AWS's error shape) or the network failing (a botocore ReadTimeoutError).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

FAULTS = {
    "Throttling": ("ThrottlingException", 400, "Rate exceeded"),
    "InternalError": ("InternalFailure", 500, "We encountered an internal error. Please try again."),
    "AccessDenied": ("AccessDeniedException", 403, "User is not authorized to perform this action"),
}


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
                code, status, message = FAULTS[log.fault]
                raise ClientError({"Error": {"Code": code, "Message": message},
                                   "ResponseMetadata": {"HTTPStatusCode": status}}, operation_name)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield log
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
