"""How a target's fleet takes a new revision: SSM's concurrency and error budget, or waves (a canary, alarms, bakes).

The progressive fields are left out of a dump while unset, so a spec without them reads (in the API, the table and
the records) exactly as before they existed. domain/rollout.py plans the waves.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, StrictBool, StrictInt, WithJsonSchema, field_validator

from .fields import StrictModel, anchored

PERCENT_OR_COUNT = r"^([1-9][0-9]{0,5}|[1-9][0-9]?%|100%)$"
ERRORS_BUDGET = r"^([0-9]{1,6}|[0-9]{1,2}%|100%)$"
CANARY_PERCENT = r"^([1-9][0-9]?|100)%$"
# CloudWatch alarm names: 1 to 255 characters; berth also refuses control characters, which no console shows.
ALARM_NAME = r"^[^\x00-\x1f\x7f]{1,255}$"
MAX_ALARMS = 100                      # DescribeAlarms takes at most 100 AlarmNames a call
MAX_BAKE_SECONDS = 3600


def _canary_size(instances: Any) -> int | str:
    # One rule for both forms, so a refusal names `canary.instances` alone (a union would name each branch).
    if type(instances) is int and 1 <= instances <= 100000:
        return instances
    if isinstance(instances, str) and re.fullmatch(anchored(CANARY_PERCENT), instances):
        return instances
    raise ValueError('give a count of 1 to 100000 instances or a percent from "1%" to "100%"')


class CanarySpec(StrictModel):
    """The first wave: that many instances (or that percent of the fleet, at least one), then a bake."""

    instances: Annotated[int | str, PlainValidator(_canary_size), WithJsonSchema({
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": 100000},
                  {"type": "string", "pattern": CANARY_PERCENT}],
        "description": "instances in the canary wave: a count, or a percent of the fleet rounded down to at least 1"})]
    bake_seconds: StrictInt = Field(default=0, ge=0, le=MAX_BAKE_SECONDS, description=(
        "seconds after the canary wave during which the alarms must stay out of ALARM before the rest is sent"))


def _is_none(value: Any) -> bool:
    return value is None


def _is_zero(value: Any) -> bool:
    return bool(value == 0)


def _is_true(value: Any) -> bool:
    return value is True


def _alarm_names(alarms: Any) -> Any:
    # Checked before the pattern, for a message a person can act on (the pattern stays for the OpenAPI schema).
    if isinstance(alarms, list):
        for index, name in enumerate(alarms):
            if isinstance(name, str) and not re.fullmatch(anchored(ALARM_NAME), name):
                raise ValueError(f"alarm {index}: CloudWatch alarm names are 1 to 255 characters, with no control "
                                 "characters")
    return alarms


class RolloutSpec(StrictModel):
    # A quarter of the fleet at a time, and never the whole of a fleet of two or more whichever way SSM rounds the
    # percent: each host swaps without a gap, but a bad image should not reach every host at once.
    max_concurrency: Annotated[str, Field(pattern=anchored(PERCENT_OR_COUNT), description=(
        "SSM MaxConcurrency: instances (or percent of them) that deploy at once; \"100%\" is all at once"))] = "25%"
    max_errors: Annotated[str, Field(pattern=anchored(ERRORS_BUDGET))] = "0"
    timeout_seconds: int = Field(default=3600, ge=60, le=172800)
    canary: CanarySpec | None = Field(default=None, exclude_if=_is_none)
    alarms: Annotated[list[Annotated[str, Field(pattern=anchored(ALARM_NAME))]] | None,
                      BeforeValidator(_alarm_names)] = Field(
        default=None, min_length=1, max_length=MAX_ALARMS, exclude_if=_is_none, description=(
            "CloudWatch alarm names: any in ALARM before the first wave refuses the deployment; during a wave or a "
            "bake it stops and rolls it back"))
    bake_seconds: StrictInt = Field(default=0, ge=0, le=MAX_BAKE_SECONDS, exclude_if=_is_zero, description=(
        "seconds after the last wave during which the alarms must stay out of ALARM"))
    auto_rollback: StrictBool = Field(default=True, exclude_if=_is_true, description=(
        "roll the instances that got the new revision back to the previous one when a wave fails or an alarm fires"))

    @field_validator("alarms")
    @classmethod
    def _distinct_alarms(cls, alarms: list[str] | None) -> list[str] | None:
        if alarms is not None and len(set(alarms)) != len(alarms):
            raise ValueError("'alarms' names an alarm twice")
        return alarms

    @property
    def in_waves(self) -> bool:
        """A canary or alarms make the rollout run in waves by instance id (domain/rollout.py); otherwise it is one
        SSM command over the whole target."""
        return self.canary is not None or self.alarms is not None
