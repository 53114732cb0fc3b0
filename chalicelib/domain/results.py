"""What one pipeline invocation reports to CodePipeline: exactly one of these, every time."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MAX_SUMMARY = 2048
MAX_FAILURE = 5000


class FailureType(StrEnum):
    """CodePipeline's FailureDetails.type values berth uses."""

    JOB_FAILED = "JobFailed"
    CONFIGURATION_ERROR = "ConfigurationError"
    REVISION_UNAVAILABLE = "RevisionUnavailable"
    SYSTEM_UNAVAILABLE = "SystemUnavailable"


@dataclass(frozen=True)
class Continue:
    token: str
    summary: str
    percent: int = 0
    external_id: str | None = None


@dataclass(frozen=True)
class Succeed:
    summary: str
    external_id: str | None = None
    output_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    message: str
    failure_type: FailureType = FailureType.JOB_FAILED
    external_id: str | None = None


JobResult = Continue | Succeed | Fail


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
