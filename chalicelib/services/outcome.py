"""What an event handler did with its event: the answer of the EventBridge-fed Lambdas and the retry Lambda."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    action: str          # "recorded", "ignored", "duplicate", "retry-scheduled", "gave-up", "retried", "waiting",
    #                      and a new instance's join: "deploying", "joined", "refused"
    detail: str = ""
