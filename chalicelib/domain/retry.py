"""When a deployment fails: what kind of failure it was, and whether, when and how berth tries again.

Failure classes:
    transient   pull failed, registry login, agent or delivery timeouts, throttling: retry after a backoff
    remediable  Docker missing (`docker: command not found`): install Docker on the instances, then retry;
                no space left on device (exit NO_SPACE): the script pruned the container's older images, retry once
    permanent   bad revision or configuration, health check failed after a clean start: never retried
`decide_retry` is the one decision for every kind of failure berth retries (an attempt of its own SSM deployment, a
CodeDeploy deployment, a pipeline stage). Backoff is exponential with full jitter (AWS Architecture Blog, "Exponential
Backoff And Jitter"):
    delay = uniform(0, min(cap, base * 2 ** (attempt - 1)))
Time and randomness come in as parameters; nothing here reads a clock or a random source.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .deployment import Attempt
from .exit_codes import EXIT_MEANING, FailureClass, ScriptExit

TRANSIENT_SSM_STATUSES = frozenset({"TimedOut", "DeliveryTimedOut", "Undeliverable", "NeverRan"})
# CodeDeploy diagnostics errorCode values that say the agent or the platform hiccuped, not the revision.
TRANSIENT_CODEDEPLOY_CODES = frozenset({"Timeout", "UnknownError", "OutOfMemory", "AgentIssue",
                                         "ThrottlingException", "HEALTH_CONSTRAINTS", "AGENT_ISSUE"})
_DOCKER_MISSING = re.compile(r"docker: (command )?not found|docker: No such file or directory|"
                             r"Cannot connect to the Docker daemon|docker\.sock: connect: no such file", re.I)
_THROTTLED = re.compile(r"Throttling|Rate exceeded|TooManyRequests|toomanyrequests", re.I)
_PULL_TRANSIENT = re.compile(r"TLS handshake timeout|i/o timeout|connection reset|net/http: request canceled|"
                             r"unexpected EOF|502 Bad Gateway|503 Service Unavailable", re.I)
_ORDER = {FailureClass.PERMANENT: 0, FailureClass.REMEDIABLE: 1, FailureClass.TRANSIENT: 2}


@dataclass(frozen=True)
class FailureSignal:
    """One instance's failure as the services saw it: SSM status and exit code, or CodeDeploy diagnostics."""

    status: str = "Failed"
    exit_code: int | None = None
    error_code: str = ""          # CodeDeploy diagnostics errorCode
    script_name: str = ""         # CodeDeploy diagnostics scriptName
    text: str = ""                # output tail / logTail / message


def classify_signal(signal: FailureSignal) -> FailureClass:
    if _DOCKER_MISSING.search(signal.text):
        return FailureClass.REMEDIABLE
    if signal.exit_code is not None:
        try:
            return EXIT_MEANING[ScriptExit(signal.exit_code)][2]
        except (ValueError, KeyError):
            pass
        if signal.exit_code == 127:            # the shell's "command not found" for something other than docker
            return FailureClass.PERMANENT
    if signal.status in TRANSIENT_SSM_STATUSES or signal.error_code in TRANSIENT_CODEDEPLOY_CODES:
        return FailureClass.TRANSIENT
    if _THROTTLED.search(signal.text) or _PULL_TRANSIENT.search(signal.text):
        return FailureClass.TRANSIENT
    return FailureClass.PERMANENT


def classify_failure(signals: Iterable[FailureSignal]) -> FailureClass:
    """The class of a failed deployment: permanent if any instance failed for good, else remediable if any
    instance needs Docker, else transient. An empty list (no diagnostics could be read) counts as transient."""
    classes = [classify_signal(signal) for signal in signals]
    return min(classes, key=_ORDER.__getitem__) if classes else FailureClass.TRANSIENT


def classify_attempt(attempt: Attempt, earlier: Sequence[Attempt] = ()) -> FailureClass:
    """How an SSM attempt failed, from its instances' results. Instances SSM cancelled because the error budget was
    spent say nothing about the failure's kind: they count only when no other instance failed. A disk still full
    after the one retry its pruning earned (an `earlier` attempt ran out of space too) is permanent."""
    failed = [r for r in attempt.instances.values() if not r.succeeded]
    telling = [r for r in failed if r.status != "Cancelled"] or failed
    found = classify_failure(FailureSignal(status=r.status, exit_code=r.response_code, text=r.output_tail)
                             for r in telling)
    if found == FailureClass.REMEDIABLE and out_of_space(attempt) and any(map(out_of_space, earlier)):
        return FailureClass.PERMANENT
    return found


def out_of_space(attempt: Attempt) -> bool:
    """Whether some instance of the attempt ran out of disk (the script pruned its older images before exiting)."""
    return any(r.response_code == ScriptExit.NO_SPACE for r in attempt.instances.values() if not r.succeeded)


def remedy_of(attempt: Attempt) -> str:
    """Why a remediable attempt is retried, in words: the disk (already pruned), else Docker missing."""
    return (f"no space left on device: the instances pruned {DISK_REMEDY}, retry once" if out_of_space(attempt)
            else "")


DISK_REMEDY = "the container's images older than its last keep_images (never the running or previous one)"


@dataclass(frozen=True)
class Breaker:
    """A target's circuit breaker: `threshold` failures within `window_seconds` stop its automatic retries."""

    threshold: int = 5
    window_seconds: int = 3600


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon berth tries again: the retry budget, the backoff, and the target's breaker."""

    max_attempts: int = 3
    base_seconds: int = 30
    cap_seconds: int = 900
    breaker: Breaker = Breaker()


@dataclass(frozen=True)
class Failure:
    """What failed, as far as the decision cares: its class, and whether it may be retried at all."""

    failure_class: FailureClass
    is_rollback: bool = False
    stopped_by_person: bool = False
    remedy: str = ""              # how a remediable failure is remedied, when not by installing Docker


@dataclass(frozen=True)
class TargetBreaker:
    """The breaker's state on the target that failed: its earlier failures (epoch seconds) and whether it is open."""

    earlier_failures: tuple[int, ...] = ()
    open: bool = False


@dataclass(frozen=True)
class History:
    """What came before this failure: the attempts made (this one included) and the target's breaker; `breaker` is
    None for a failure that belongs to no target (a pipeline stage, a CodeDeploy group berth has no target for)."""

    attempts_made: int
    breaker: TargetBreaker | None = None


@dataclass(frozen=True)
class Retry:
    attempt: int                  # the number the next attempt will have
    at: datetime
    delay_seconds: float
    remediate_first: bool
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str
    open_breaker: bool = False


RetryDecision = Retry | GiveUp


def backoff_seconds(attempt: int, base: float, cap: float, rng: Callable[[float, float], float]) -> float:
    """Full jitter: a delay drawn from [0, min(cap, base * 2**(attempt-1))], `attempt` counting from 1."""
    ceiling = min(float(cap), float(base) * (1 << min(max(0, attempt - 1), 62)))
    drawn: float = rng(0.0, ceiling)
    return min(max(drawn, 0.0), ceiling)


def breaker_trips(recent_failures: Sequence[int], now: int, breaker: Breaker) -> bool:
    window_start = now - breaker.window_seconds
    return sum(1 for at in recent_failures if at >= window_start) >= breaker.threshold


def decide_retry(failure: Failure, history: History, policy: RetryPolicy, now: datetime,
                 rng: Callable[[float, float], float]) -> RetryDecision:
    """What follows a failure, for every kind berth retries (an SSM attempt, a CodeDeploy deployment, a pipeline
    stage). A rollback or a stop by a person is never retried; an open or tripping breaker, a permanent failure and a
    spent budget give up; anything else is retried after a full-jitter backoff, remediated first when Docker is
    missing. A give-up says whether this failure opens the target's breaker."""
    breaker = history.breaker
    recent = (*breaker.earlier_failures, int(now.timestamp())) if breaker is not None else ()
    trips = breaker is not None and breaker_trips(recent, int(now.timestamp()), policy.breaker)
    if failure.is_rollback:
        return GiveUp("the failed deployment is a rollback; berth never retries a rollback", trips)
    if failure.stopped_by_person:
        return GiveUp("a person stopped the deployment; berth does not retry it", trips)
    if breaker is not None and (breaker.open or trips):
        return GiveUp(f"circuit breaker open: the target failed {len(recent)} times within "
                      f"{policy.breaker.window_seconds // 60} minutes; automatic retries stop until a person "
                      "redeploys", True)
    if failure.failure_class == FailureClass.PERMANENT:
        return GiveUp("the failure is permanent (bad revision, configuration, or a health check that failed after a "
                      "clean start); retrying would fail the same way")
    attempts_made = history.attempts_made
    if attempts_made >= policy.max_attempts:
        return GiveUp(f"retry budget spent: {attempts_made} of {policy.max_attempts} attempts made")
    delay = backoff_seconds(attempts_made, policy.base_seconds, policy.cap_seconds, rng)
    remediate = failure.failure_class == FailureClass.REMEDIABLE
    reason = ((failure.remedy or "Docker is missing on some instances: install it, then retry") if remediate
              else "transient failure: retry after a backoff")
    return Retry(attempts_made + 1, now + timedelta(seconds=delay), delay, remediate, reason)


# EventBridge Scheduler: a schedule's name is 1 to 64 of [0-9a-zA-Z-_.], unique within its group.
SCHEDULE_NAME_MAX = 64
_SCHEDULE_PREFIX = "berth-retry-"
_NAME_HASH_CHARS = 16


def schedule_name(lineage: str, attempt: int, wait: int = 0) -> str:
    """The EventBridge Scheduler name of a retry: deterministic, so a second create of the same retry is a conflict,
    and unique per retry: a readable start of `lineage`, then a hash of all of it, then the attempt (and the wait,
    for a retry waiting on its remediation). Two keys that agree up to the cut, or differ only in characters a name
    cannot hold, still get two names."""
    digest = hashlib.sha256(lineage.encode()).hexdigest()[:_NAME_HASH_CHARS]
    suffix = f"-{attempt}" + (f"-w{wait}" if wait else "")
    room = max(0, SCHEDULE_NAME_MAX - len(_SCHEDULE_PREFIX) - 1 - _NAME_HASH_CHARS - len(suffix))
    readable = re.sub(r"[^0-9a-zA-Z\-_.]", "-", lineage)[:room]
    return f"{_SCHEDULE_PREFIX}{readable}{'-' if readable else ''}{digest}{suffix}"
