"""Turning botocore's errors into berth's, at the adapter boundary.

Every AWS call an adapter makes goes through `aws_call`, the one place that catches botocore's errors:

    aws_call("DynamoDB PutItem (claim)", db.put_item, expected={CONDITION_FAILED: returning(None)}, **params)

Without `expected`, any ClientError or BotoCoreError becomes AwsCallFailed naming the operation (chained to the
botocore error). `expected` names the error codes that mean something to the caller: each maps to a handler that
is given the ClientError and returns the value `aws_call` returns instead (`returning`) or raises berth's own error
(`raising`), which replaces the botocore error rather than chaining it. A call that may have been carried out
although no answer says so (`may_have_run`: SendCommand, CreateDeployment) fails with CallUnanswered instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from chalicelib.domain.errors import AwsCallFailed, CallUnanswered

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELLED = "TransactionCanceledException"

Handler = Callable[[ClientError], Any]


def aws_call(operation: str, method: Callable[..., Any], /, *, expected: Mapping[str, Handler] | None = None,
             may_have_run: bool = False, failure: Callable[[ClientError | BotoCoreError], Exception] | None = None,
             **params: Any) -> Any:
    """`method(**params)`, with botocore's errors turned into berth's.

    `expected` is looked up by the error code, then by the code's family (EC2's `InvalidInstanceID.NotFound` is
    found under `InvalidInstanceID`). `failure` replaces AwsCallFailed for every other error, raised in place of the
    botocore error (an adapter whose failures all mean one thing to the caller, such as an unreadable artifact).
    `method` may be any callable that makes AWS calls (a paginated read, a download and its body).
    """
    try:
        return method(**params)
    except ClientError as exc:
        code = error_code(exc)
        handler = (expected or {}).get(code) or (expected or {}).get(code.split(".", 1)[0])
        if handler is not None:
            return handler(exc)
        _fail(operation, exc, may_have_run, failure)
    except BotoCoreError as exc:
        _fail(operation, exc, may_have_run, failure)


def returning(value: Any) -> Handler:
    """An expected error code whose meaning is a plain answer: `aws_call` returns `value`."""
    return lambda _exc: value


def raising(error_for: Callable[[ClientError], Exception]) -> Handler:
    """An expected error code that is one of berth's errors: `aws_call` raises `error_for(exc)` in its place."""

    def handler(exc: ClientError) -> NoReturn:
        raise error_for(exc) from None

    return handler


def _fail(operation: str, exc: ClientError | BotoCoreError, may_have_run: bool,
          failure: Callable[[ClientError | BotoCoreError], Exception] | None) -> NoReturn:
    if failure is not None:
        raise failure(exc) from None
    lost = unanswered(operation, exc) if may_have_run else None
    raise lost or aws_failure(operation, exc) from exc


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def aws_failure(operation: str, exc: ClientError | BotoCoreError) -> AwsCallFailed:
    if isinstance(exc, ClientError):
        return AwsCallFailed(f"{operation} failed with {error_code(exc)}: {error_message(exc)}")
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
