"""The CodePipeline continuation token berth hands back while a deployment runs.

It is compact JSON, well under CodePipeline's 2048-character limit, and carries no secrets:
    {"v": 1, "d": "<deployment id>"}                 following a deployment
    {"v": 1, "w": "<target>", "s": <epoch seconds>}  waiting for the target (its lock, or its freeze) since s
Everything else berth needs is in the deployment record, so a token stays small whatever the fleet size.

A token comes back inside the next job's event, so berth reads it as untrusted input: exactly these keys, a
deployment id and a target name of berth's own shapes, `v` and `s` plain integers in range (no floats, no 5000-digit
numbers, no duplicate keys). Without a secret berth cannot sign it; what stops a token from reporting someone else's
deployment is the check in services/pipeline_job.py that the deployment belongs to the target this job's
UserParameters name and was started by a pipeline job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidEvent

if TYPE_CHECKING:
    from .deployment import Deployment

MAX_TOKEN = 2048
MAX_SINCE = 2**40                      # epoch seconds: far beyond any real clock, far below a bignum
CLOCK_SKEW = 300                       # a lock wait may have started this much "later" than this Lambda's clock
_DEPLOYMENT_ID = re.compile(r"d-[0-9A-Za-z][0-9A-Za-z-]{0,62}")
_TARGET = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
_MAX_DIGITS = 20


@dataclass(frozen=True)
class Following:
    deployment_id: str


@dataclass(frozen=True)
class WaitingForLock:
    target: str
    since: int


Token = Following | WaitingForLock


class _NotOurs(Exception):
    pass


def encode(token: Token) -> str:
    if isinstance(token, Following):
        body: dict[str, object] = {"v": 1, "d": token.deployment_id}
    else:
        body = {"v": 1, "w": token.target, "s": token.since}
    text = json.dumps(body, separators=(",", ":"))
    if len(text) > MAX_TOKEN:
        raise ValueError("continuation token longer than CodePipeline allows")
    try:
        _token(_parse(text))
    except _NotOurs:
        raise ValueError(f"{token!r} is not a token berth writes") from None
    return text


def decode(text: str) -> Token:
    try:
        if len(text) > MAX_TOKEN:
            raise _NotOurs
        return _token(_parse(text))
    except _NotOurs:
        raise InvalidEvent("the continuation token is not one berth wrote") from None


def check_following(deployment: Deployment, target: str) -> None:
    """Refuse to report `deployment` to a job that deploys `target` unless a pipeline job of that target started it."""
    if deployment.target != target:
        raise InvalidEvent(
            f"the continuation token names deployment {deployment.deployment_id} of target {deployment.target!r}, "
            f"but this action deploys target {target!r} (its UserParameters): berth reports only the deployments of "
            "the action's own target. Retry the stage to start a deployment of it.")
    if deployment.job_id is None:
        raise InvalidEvent(
            f"the continuation token names deployment {deployment.deployment_id}, which was not started by a "
            f"pipeline job ({deployment.trigger} by {deployment.caller}): a pipeline action reports only the "
            "deployments pipeline jobs started. Retry the stage to start one.")


def check_waiting(token: WaitingForLock, target: str, now: int) -> None:
    """Refuse a lock wait for another target than the job's, or one that starts in the future."""
    if token.target != target:
        raise InvalidEvent(f"the continuation token waits for target {token.target!r}, but this action deploys "
                           f"target {target!r} (its UserParameters). Retry the stage.")
    if token.since > now + CLOCK_SKEW:
        raise InvalidEvent(f"the continuation token's lock wait starts in the future (epoch {token.since}, now "
                           f"{now}): it is not one berth wrote. Retry the stage.")


def _parse(text: str) -> Any:
    try:
        return json.loads(text, parse_int=_small_int, parse_float=_refuse, parse_constant=_refuse,
                          object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):   # JSONDecodeError is a ValueError
        raise _NotOurs from None


def _token(body: Any) -> Token:
    if not isinstance(body, dict) or type(body.get("v")) is not int or body["v"] != 1:
        raise _NotOurs
    if body.keys() == {"v", "d"} and isinstance(body["d"], str) and _DEPLOYMENT_ID.fullmatch(body["d"]):
        return Following(body["d"])
    if (body.keys() == {"v", "w", "s"} and isinstance(body["w"], str) and _TARGET.fullmatch(body["w"])
            and type(body["s"]) is int and 0 <= body["s"] <= MAX_SINCE):
        return WaitingForLock(body["w"], body["s"])
    raise _NotOurs


def _small_int(digits: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise _NotOurs
    return int(digits)


def _refuse(value: str) -> Any:
    raise _NotOurs


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise _NotOurs
    return body
