"""A new instance joining its target: which target it joins, and the join's record.

Matching: an instance joins a registered target when it carries `berth:managed=true` and every tag of the target's
`instances.tags`. A target listed by instance ids never matches a new instance (its list is the whole fleet). When
more than one target matches, berth does not guess which container the instance is for: the join is refused (the
lifecycle action ABANDONed, naming the targets), since two targets swapping containers on one host in name order
would leave it running whichever came last.

The record (one per instance, `JOIN#<instance id>`) is what makes a join happen once per launch: EventBridge delivers
at least once, and an instance in an Auto Scaling group with a launch hook is announced twice (its state change to
running and the lifecycle action). A record of another launch time (the instance was stopped and started) is a new
join. `result` is decided once; `completed` is set before CompleteLifecycleAction is called, so it is never called
twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import BerthError
from .instance_launch import LifecycleHook
from .spec import TargetSpec
from .spec.location import LocationSpec

MANAGED_TAG = "berth:managed"
Result = Literal["CONTINUE", "ABANDON"]


class InstanceNotVisible(BerthError):
    """EC2 does not describe an instance it just announced (its API is eventually consistent): the handler fails, so
    the event is delivered again, rather than let a held instance go on without its container."""


def matching_targets(tags: dict[str, str], targets: Iterable[TargetSpec]) -> list[str]:
    """The names of the targets an instance with `tags` belongs to, in name order."""
    if tags.get(MANAGED_TAG) != "true":
        return []
    return sorted(spec.target for spec in targets
                  if spec.instances.tags is not None and spec.instances.tags.items() <= tags.items())


@dataclass(frozen=True)
class JoinPolicy:
    """How long a join waits, looking again every `look_seconds` (a one-time schedule resolves to the minute):
    for SSM to see the instance Online, and for another deployment to free the target. Both stay below an Auto
    Scaling lifecycle hook's default heartbeat timeout (3600 s), so berth, not the timeout, decides."""

    look_seconds: int = 60
    online_within: timedelta = timedelta(minutes=10)
    busy_within: timedelta = timedelta(minutes=30)


class JoinRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str
    launched_at: datetime
    source: str                       # who announced it: the caller of the join deployment
    first_seen: datetime
    target: str | None = None
    hook: LifecycleHook | None = None
    deployment_id: str | None = None  # the join's deployment, or the deployment by tags that covers the instance
    looks: int = 0                    # scheduled looks carried out
    result: Result | None = None
    detail: str = ""
    completed: bool = False           # CompleteLifecycleAction claimed (set before the call)
    version: int = 0
    # Where the instance is, when not in berth's own account and region (its target's location): left out of the
    # item while unset, so a home join's record reads as before.
    location: LocationSpec | None = Field(default=None, exclude_if=lambda value: value is None)

    @property
    def lineage(self) -> str:
        """Names the join's look schedules (with the look's number): one series per instance launch."""
        return f"join-{self.instance_id}-{int(self.launched_at.timestamp())}"

    @property
    def to_complete(self) -> bool:
        return self.result is not None and self.hook is not None and not self.completed

    def ended(self, result: Result, detail: str) -> JoinRecord:
        return self.model_copy(update={"result": result, "detail": detail})

    def ambiguous(self, targets: list[str]) -> JoinRecord:
        """The instance carries the tags of several targets: berth will not guess which container it is for."""
        return self.model_copy(update={"target": None}).ended(
            "ABANDON", f"instance {self.instance_id} matches targets {', '.join(targets)}: berth will not guess which "
                       "container it is for")

    def looked(self, attempt: int) -> JoinRecord:
        """Scheduled look `attempt` is being carried out."""
        return self.model_copy(update={"looks": attempt})

    def held_by(self, hook: LifecycleHook) -> JoinRecord:
        """The Auto Scaling lifecycle action that holds the instance, announced after its state change."""
        return self.model_copy(update={"hook": hook})

    def deployed_by(self, deployment_id: str) -> JoinRecord:
        """The join's own deployment, or a deployment by tags that covers the instance."""
        return self.model_copy(update={"deployment_id": deployment_id})

    def completion_claimed(self, claimed: bool = True) -> JoinRecord:
        """CompleteLifecycleAction claimed before the call (or the claim given back when the call failed)."""
        return self.model_copy(update={"completed": claimed})

    def waited_too_long(self, now: datetime, within: timedelta) -> bool:
        return now - self.first_seen > within
