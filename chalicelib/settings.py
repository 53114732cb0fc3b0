"""berth's settings, read from the environment when a handler runs (never at import), so each stage's Lambda
configuration and `chalice.test.Client`'s per-call environment both apply. chalicelib.wiring reads them once per
invocation and hands them to what it builds; services get plain values, never Settings.

botocore reads `AWS_ENDPOINT_URL` itself, and chalicelib.observability reads `BERTH_STAGE`, `BERTH_TRACING` and
`POWERTOOLS_LOG_LEVEL` before any settings exist (a handler logs even when `BERTH_TABLE` is missing)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(min_length=3)
    region: str = "us-east-1"
    lock_wait_seconds: int = Field(default=1800, ge=0)
    retry_function_arn: str = ""          # the retry_deployment Lambda, which Scheduler invokes
    scheduler_role_arn: str = ""          # the role Scheduler assumes to invoke it
    schedule_group: str = "default"
    schedule_dead_letter_arn: str = ""    # an SQS queue for schedules Scheduler could not deliver
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_window_seconds: int = Field(default=3600, ge=60)
    retry_pipelines: frozenset[str] = frozenset()                    # pipelines whose FAILED actions berth retries
    codedeploy_groups: frozenset[tuple[str, str]] = frozenset()      # (application, group) pairs berth follows
    command_output_bucket: str = ""       # where SSM also writes the whole output of `berth logs` / `berth exec`
    event_bus: str = Field(default="default", min_length=1)   # where berth publishes its own events
    account_id: str = Field(default="", pattern=r"^([0-9]{12})?$")   # berth's own account: home targets' events

    @property
    def retries_enabled(self) -> bool:
        return bool(self.retry_function_arn and self.scheduler_role_arn)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            table_name=env.get("BERTH_TABLE", ""),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            lock_wait_seconds=int(env.get("BERTH_LOCK_WAIT_SECONDS", "1800")),
            retry_function_arn=env.get("BERTH_RETRY_FUNCTION_ARN", ""),
            scheduler_role_arn=env.get("BERTH_SCHEDULER_ROLE_ARN", ""),
            schedule_group=env.get("BERTH_SCHEDULE_GROUP", "default"),
            schedule_dead_letter_arn=env.get("BERTH_SCHEDULE_DEAD_LETTER_ARN", ""),
            breaker_threshold=int(env.get("BERTH_BREAKER_THRESHOLD", "5")),
            breaker_window_seconds=int(env.get("BERTH_BREAKER_WINDOW_SECONDS", "3600")),
            retry_pipelines=frozenset(_names(env.get("BERTH_RETRY_PIPELINES", ""))),
            codedeploy_groups=frozenset(_pairs(env.get("BERTH_CODEDEPLOY_GROUPS", ""))),
            command_output_bucket=env.get("BERTH_COMMAND_OUTPUT_BUCKET", ""),
            event_bus=env.get("BERTH_EVENT_BUS") or "default",
            account_id=env.get("BERTH_ACCOUNT_ID", ""),
        )


def _pairs(text: str) -> list[tuple[str, str]]:
    """ "app/group,app2/group2" -> [("app", "group"), ("app2", "group2")]"""
    return [(pair.split("/", 1)[0], pair.split("/", 1)[1]) for pair in _names(text) if "/" in pair]


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]
