"""Service errors raised by the extensions.

They subclass moto's ``ServiceException`` so moto serializes them with the service's own protocol (the
``__type`` field of the JSON error body), which is what botocore turns into ``ClientError`` codes.
"""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class AwsError(ServiceException):
    """An error with an explicit AWS error code, e.g. ``AwsError("InvalidJobStateException", "...")``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def validation_error(messages: list[str]) -> AwsError:
    """Build the ``ValidationException`` AWS returns for constraint violations, in its own wording."""
    count = len(messages)
    noun = "error" if count == 1 else "errors"
    return AwsError("ValidationException", f"{count} validation {noun} detected: " + "; ".join(messages))
