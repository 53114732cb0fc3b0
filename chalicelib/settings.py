"""berth's settings, read from the environment when a handler runs (never at import), so each stage's Lambda
configuration and `chalice.test.Client`'s per-call environment both apply."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(min_length=3)
    stage: str = "dev"
    region: str = "us-east-1"
    lock_wait_seconds: int = Field(default=1800, ge=0)
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            table_name=env.get("BERTH_TABLE", ""),
            stage=env.get("BERTH_STAGE", "dev"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            lock_wait_seconds=int(env.get("BERTH_LOCK_WAIT_SECONDS", "1800")),
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        )
