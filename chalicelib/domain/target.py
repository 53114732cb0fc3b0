"""A target as berth keeps it: its spec and current revision, what each of its instances runs as far as berth knows,
the lock one deployment holds, the deployment that started last, the window of recent failures its circuit
breaker counts, and its freeze."""

from __future__ import annotations

from dataclasses import dataclass, field

from .deployment import Revision
from .fleet import Fleet
from .freeze import Freeze
from .spec import TargetSpec


@dataclass(frozen=True)
class TargetRecord:
    spec: TargetSpec
    current_revision: Revision | None
    last_deployment_id: str | None
    updated_by: str
    recent_failures: tuple[int, ...] = ()      # epoch seconds of automatic-deployment failures, newest last
    breaker_open_since: int | None = None       # automatic retries stop while set; a person's redeploy clears it
    fleet: Fleet = field(default_factory=Fleet)  # what each instance runs as far as berth knows (domain/fleet.py)
    freeze: Freeze | None = None                # who froze the target, why, until when (domain/freeze.py)


@dataclass(frozen=True)
class Lock:
    deployment_id: str
    job_id: str | None
    acquired_at: int
    expires_at: int


@dataclass(frozen=True)
class LatestStart:
    """The deployment that started last on a target, and when (epoch microseconds)."""

    deployment_id: str
    started_at_us: int


def failure_window(recent: tuple[int, ...], at: int, keep_after: int) -> tuple[int, ...]:
    """The failures the breaker counts once a failure at `at` is added: those at or after `keep_after`, then `at`."""
    return (*(failure for failure in recent if failure >= keep_after), at)
