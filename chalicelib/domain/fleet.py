"""What each instance of a target runs as far as berth knows, and which instances a deployment left behind. Pure.

The map is derived from a deployment's attempts when it ends (succeeded, failed, cancelled or rolled back), and kept
in the target's item with the end (adapters/store/locks.py `settle_target`). Each instance the deployment reached gets
its last reported digest (the script's `berth-digest:` line); an instance that succeeded without reporting one (a
wave or a command that passed on SSM's counts alone) runs the digest its attempt sent: the revision's, or for a
rollback's attempt the previous revision's. An instance that failed or never ran keeps what berth knew of it before,
since the script puts the old container back when a new one fails (its digest is unknown when berth knew nothing).

A deployment to the whole target (pipeline, api, retry, rollback) also drops the instances it no longer matched: they
left the target. A deployment to named instances (a sync, a join; `NAMED_INSTANCE_TRIGGERS`) changes only theirs.

Bounded: the target item is one DynamoDB item (400 KB) next to a spec of up to 64 KB, so the map keeps at most
MAX_TRACKED instances, those left behind first, and counts the rest in `untracked`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from .deployment import Attempt, Deployment, DeploymentStatus, Revision
from .rollout import NOT_STARTED

MAX_TRACKED = 1000
# Deployments that go to named instances of the target: they add to the map and never change the current revision.
NAMED_INSTANCE_TRIGGERS = frozenset({"sync", "join"})
MAX_LISTED = 20                    # instance ids a message names before it says "and N more"


class InstanceState(BaseModel):
    """What one instance runs as far as berth knows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str | None = None          # sha256:...; None when berth does not know
    deployment_id: str | None = None   # the deployment that put it there (or last reached it)
    at: datetime | None = None         # when that deployment's attempt ended


class Fleet(BaseModel):
    """A target's instances as berth knows them, by instance id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: dict[str, InstanceState] = Field(default_factory=dict)
    untracked: int = 0                 # instances left out of `instances` to stay within MAX_TRACKED

    @property
    def capped(self) -> bool:
        return self.untracked > 0


def left_behind(fleet: Fleet, current: Revision | None, among: Iterable[str] | None = None) -> list[str]:
    """The instances (of `among`, when given) not known to run the current revision's digest, sorted: an unknown
    digest counts as behind. None when the target has no revision, or one whose digest is unknown: there is nothing
    to compare with."""
    if current is None or current.digest is None:
        return []
    ids = fleet.instances if among is None else [i for i in among if i in fleet.instances]
    return sorted(i for i in ids if fleet.instances[i].digest != current.digest)


def fleet_after(fleet: Fleet, deployment: Deployment, current: Revision | None, limit: int = MAX_TRACKED) -> Fleet:
    """The map once `deployment` (ended) is taken in; `current` is the target's revision after it."""
    matched = reached(deployment)
    if not matched:
        return fleet                   # it sent nothing: berth learnt nothing new
    if deployment.trigger in NAMED_INSTANCE_TRIGGERS:
        known = dict(fleet.instances)
        untracked = fleet.untracked
    else:
        kept = set(matched)
        known = {i: state for i, state in fleet.instances.items() if i in kept}
        untracked = 0
    for instance_id in matched:
        known.setdefault(instance_id, InstanceState())
    for attempt in deployment.attempts:
        sent = _digest_sent(deployment, attempt)
        at = attempt.ended_at or deployment.updated_at
        for instance_id in attempt.expected_instances or list(attempt.instances):
            digest = _reported(attempt, instance_id, sent)
            if digest is not None:
                known[instance_id] = InstanceState(digest=digest, deployment_id=deployment.deployment_id, at=at)
    return bounded(Fleet(instances=known, untracked=untracked), current, limit)


def bounded(fleet: Fleet, current: Revision | None, limit: int = MAX_TRACKED) -> Fleet:
    """At most `limit` instances: those left behind first (so a sync finds them), then the rest by id."""
    if len(fleet.instances) <= limit:
        return fleet
    behind = left_behind(fleet, current)
    keep = (behind + sorted(set(fleet.instances) - set(behind)))[:limit]
    return Fleet(instances={i: fleet.instances[i] for i in sorted(keep)},
                 untracked=fleet.untracked + len(fleet.instances) - len(keep))


def behind_text(target: str, behind: list[str]) -> str:
    """The sentence a deployment's message ends with when it left instances behind."""
    shown = ", ".join(behind[:MAX_LISTED]) + (f" and {len(behind) - MAX_LISTED} more" if len(behind) > MAX_LISTED
                                              else "")
    return (f"{len(behind)} instances left behind, not on this revision: {shown}; `berth sync {target}` "
            f"(POST /targets/{target}/sync) brings them to it")


def with_left_behind(finished: Deployment, behind: list[str]) -> Deployment:
    """A succeeded deployment that lists the instances it left behind, in its record and its message."""
    if finished.status != DeploymentStatus.SUCCEEDED or not behind:
        return finished
    message = f"{finished.message}. {behind_text(finished.target, behind)}" if finished.message else \
        behind_text(finished.target, behind)
    return finished.model_copy(update={"left_behind": behind[:MAX_TRACKED], "message": message})


def reached(deployment: Deployment) -> list[str]:
    """Every instance the deployment matched: each attempt's, and every wave's (sent or not)."""
    reached = {i for attempt in deployment.attempts for i in (*attempt.expected_instances, *attempt.instances)}
    if deployment.rollout is not None:
        reached |= {i for wave in deployment.rollout.waves for i in wave}
    return sorted(reached)


def _digest_sent(deployment: Deployment, attempt: Attempt) -> str | None:
    """The digest the attempt's command installs: the previous revision's for a rollback's attempt."""
    if attempt.image is not None:
        previous = deployment.previous_revision
        return previous.digest if previous is not None else None
    return deployment.revision.digest


def _reported(attempt: Attempt, instance_id: str, sent: str | None) -> str | None:
    """What the instance runs after the attempt, when the attempt says; None when it keeps what it ran before."""
    result = attempt.instances.get(instance_id)
    if result is None:
        return sent if _passed_on_counts(attempt) else None
    if result.digest:
        return result.digest
    if result.succeeded and result.status not in NOT_STARTED:
        return sent
    return None


def _passed_on_counts(attempt: Attempt) -> bool:
    """An attempt over whose every instance succeeded by SSM's counts, with no per-instance result kept."""
    tally = attempt.tally
    return (not attempt.instances and attempt.ended_at is not None and tally is not None and tally.total > 0
            and tally.succeeded == tally.total)
