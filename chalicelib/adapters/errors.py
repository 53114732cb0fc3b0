"""Turning botocore's errors into berth's, at the adapter boundary."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from chalicelib.domain.errors import AwsCallFailed, CallUnanswered


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def aws_failure(operation: str, exc: ClientError | BotoCoreError) -> AwsCallFailed:
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return AwsCallFailed(f"{operation} failed with {error_code(exc)}: {message}")
    return AwsCallFailed(f"{operation} failed: {type(exc).__name__}")


def unanswered(operation: str, exc: ClientError | BotoCoreError) -> CallUnanswered | None:
    """CallUnanswered when the call may have been carried out although no answer says so: the network failed (a
    timeout, a closed connection) or AWS answered 5xx, which it may do after acting. None for a refusal (4xx) or an
    error of berth's own making (bad parameters): those prove nothing ran."""
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status >= 500:
            return CallUnanswered(f"{operation} got no usable answer: {error_code(exc)} (HTTP {status})")
        return None
    if isinstance(exc, (HTTPClientError, BotocoreConnectionError)):
        return CallUnanswered(f"{operation} got no answer: {type(exc).__name__}")
    return None
