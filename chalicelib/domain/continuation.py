"""The CodePipeline continuation token berth hands back while a deployment runs.

It is compact JSON, well under CodePipeline's 2048-character limit, and carries no secrets:
    {"v": 1, "d": "<deployment id>"}                 following a deployment
    {"v": 1, "w": "<target>", "s": <epoch seconds>}  waiting for the target's lock since s
Everything else berth needs is in the deployment record, so a token stays small whatever the fleet size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import InvalidEvent

MAX_TOKEN = 2048


@dataclass(frozen=True)
class Following:
    deployment_id: str


@dataclass(frozen=True)
class WaitingForLock:
    target: str
    since: int


Token = Following | WaitingForLock


def encode(token: Token) -> str:
    if isinstance(token, Following):
        body: dict[str, object] = {"v": 1, "d": token.deployment_id}
    else:
        body = {"v": 1, "w": token.target, "s": token.since}
    text = json.dumps(body, separators=(",", ":"))
    if len(text) > MAX_TOKEN:
        raise ValueError("continuation token longer than CodePipeline allows")
    return text


def decode(text: str) -> Token:
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidEvent("the continuation token is not one berth wrote") from None
    if isinstance(body, dict) and body.get("v") == 1:
        if isinstance(body.get("d"), str):
            return Following(body["d"])
        if isinstance(body.get("w"), str) and type(body.get("s")) is int:
            return WaitingForLock(body["w"], body["s"])
    raise InvalidEvent("the continuation token is not one berth wrote")
