"""Turning botocore's errors into berth's, at the adapter boundary."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import AwsCallFailed


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def aws_failure(operation: str, exc: ClientError | BotoCoreError) -> AwsCallFailed:
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return AwsCallFailed(f"{operation} failed with {error_code(exc)}: {message}")
    return AwsCallFailed(f"{operation} failed: {type(exc).__name__}")
