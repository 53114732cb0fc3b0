"""The deployment record: written before berth acts, updated as SSM reports, read by every later invocation.

A deployment is one revision (image with digest) going to one target. It may take several attempts (retries send a
new SSM command for the same digest); each attempt has its own command id and per-instance results.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .image_ref import parse_image_ref
from .release import ReleaseTask
from .rollout import Rollout
from .spec import TargetSpec, Trigger


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"          # recorded, lock held, command not sent yet
    IN_PROGRESS = "IN_PROGRESS"  # a command is out
    RETRYING = "RETRYING"        # an attempt failed and another is scheduled
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ROLLED_BACK = "ROLLED_BACK"  # a wave failed or an alarm fired: the instances that got it run the previous digest

    @property
    def is_final(self) -> bool:
        return self in (DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.CANCELLED,
                        DeploymentStatus.ROLLED_BACK)


class InstanceResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_id: str
    status: str                       # SSM's invocation status, or "NeverRan"
    response_code: int | None = None
    step: str | None = None           # the script step it ended in (berth-step marker)
    digest: str | None = None         # what it reported running (berth-digest marker)
    output_tail: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "Success" and self.response_code in (0, None)


class Tally(BaseModel):
    """An attempt's instances by outcome."""

    model_config = ConfigDict(extra="forbid")

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int
    command_id: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    expected_instances: list[str] = Field(default_factory=list)
    instances: dict[str, InstanceResult] = Field(default_factory=dict)   # read once the command is over
    tally: Tally | None = None        # kept current on every refresh, from SSM's counts while the command runs
    outcome: str | None = None        # "succeeded" or a failure message
    sends: int = 0                    # SendCommand tries: each is saved before it is made (0: a record from before)
    sent_at: datetime | None = None   # when the last try was made
    # Left out of a dump while unset, so records of a plain rollout read as before these fields existed.
    wave: int | None = Field(default=None, exclude_if=lambda value: value is None)   # its wave (domain/rollout.py)
    image: str | None = Field(default=None, exclude_if=lambda value: value is None)  # a rollback's pinned image

    @property
    def last_send_at(self) -> datetime:
        return self.sent_at or self.started_at


def command_comment(deployment_id: str, attempt: int, send: int = 1) -> str:
    """The SSM Comment of one SendCommand try: unique per deployment, attempt and try, so an unanswered send can be
    looked for (ListCommands) before anything is sent again. SendCommand has no idempotency token; this is berth's."""
    base = f"berth {deployment_id} attempt {attempt}"
    return base if send <= 1 else f"{base} send {send}"


def send_number(comment: str, deployment_id: str, attempt: int) -> int | None:
    """Which try of the attempt a command's Comment names, or None when it is not one of the attempt's."""
    base = command_comment(deployment_id, attempt)
    if comment == base:
        return 1
    number = comment.removeprefix(f"{base} send ")
    return int(number) if number != comment and number.isdigit() else None


class Decision(BaseModel):
    """An entry in the deployment's history: what berth decided, when, and because of what."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    action: str                       # e.g. "dispatched", "retry-scheduled", "gave-up", "succeeded"
    detail: str = ""
    cause: str = ""                   # the event or call that led to it


class Revision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str                        # as given: registry/repo:tag
    digest: str | None = None         # sha256:...; None only until an instance reports one (non-ECR images)

    @property
    def pinned(self) -> str:
        ref = parse_image_ref(self.image)
        return ref.with_digest(self.digest).pinned if self.digest and not ref.digest else ref.pinned


class CodeDeployRecord(BaseModel):
    """A CodeDeploy deployment berth follows: its states, and what berth decided when it failed.

    `lineage` is the id of the first deployment of a retry chain; `attempt` counts from 1 along it.

    The record is one DynamoDB item (400 KB) whatever the fleet size, so instance events are summarised (see
    `after_state_event`): counts by state, the first MAX_TRACKED_INSTANCES instances' last states, the first
    MAX_FAILED_INSTANCES failed instance ids, and history entries for the first MAX_INSTANCE_HISTORY instance events.
    The failed instances' diagnostics are read from CodeDeploy when the deployment fails, not kept per event.
    """

    model_config = ConfigDict(extra="forbid")

    deployment_id: str
    application: str
    group: str
    target: str | None = None
    lineage: str
    attempt: int = 1
    state: str = "START"
    instances: dict[str, str] = Field(default_factory=dict)      # the first instances seen -> their last state
    instance_events: dict[str, int] = Field(default_factory=dict)  # every instance event, counted by state
    failed_instances: list[str] = Field(default_factory=list)     # the first instances that reported FAILURE
    seen_events: list[str] = Field(default_factory=list)          # the latest EventBridge event ids recorded
    history: list[Decision] = Field(default_factory=list)
    decided: bool = False                                         # a FAILURE has been acted on (exactly once)
    remediation_commands: list[str] = Field(default_factory=list)
    retried_as: str | None = None
    version: int = 0


MAX_TRACKED_INSTANCES = 100
MAX_FAILED_INSTANCES = 50
MAX_INSTANCE_HISTORY = 50
MAX_SEEN_EVENTS = 200


def after_state_event(record: CodeDeployRecord, event_id: str, state: str, instance_id: str | None,
                      is_instance_event: bool, at: datetime) -> CodeDeployRecord:
    """The record once a state-change event is recorded; it stays a few tens of KB at any fleet size.

    A deployment event sets the deployment's state and always enters the history. An instance event is counted by
    state; the first MAX_TRACKED_INSTANCES instances keep their last state by id, the first MAX_FAILED_INSTANCES
    instances that fail are listed, and only the first MAX_INSTANCE_HISTORY instance events enter the history.
    """
    seen = [*record.seen_events[-(MAX_SEEN_EVENTS - 1):], event_id]
    if not is_instance_event:
        return record.model_copy(update={"state": state, "seen_events": seen, "history": [
            *record.history, Decision(at=at, action=f"state-{state.lower()}", detail=f"deployment {state}",
                                      cause=f"event {event_id}")]})
    update: dict[str, object] = {
        "seen_events": seen,
        "instance_events": {**record.instance_events, state: record.instance_events.get(state, 0) + 1}}
    if instance_id and (instance_id in record.instances or len(record.instances) < MAX_TRACKED_INSTANCES):
        update["instances"] = {**record.instances, instance_id: state}
    if (instance_id and state == "FAILURE" and instance_id not in record.failed_instances
            and len(record.failed_instances) < MAX_FAILED_INSTANCES):
        update["failed_instances"] = [*record.failed_instances, instance_id]
    if sum(record.instance_events.values()) < MAX_INSTANCE_HISTORY:
        update["history"] = [*record.history, Decision(
            at=at, action=f"state-{state.lower()}", detail=f"instance {instance_id or '(unnamed)'} {state}",
            cause=f"event {event_id}")]
    return record.model_copy(update=update)


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment_id: str
    target: str
    spec: TargetSpec
    revision: Revision
    previous_revision: Revision | None = None
    trigger: Trigger
    caller: str
    job_id: str | None = None
    status: DeploymentStatus = DeploymentStatus.PENDING
    attempts: list[Attempt] = Field(default_factory=list)
    history: list[Decision] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    message: str = ""
    # The waves and where they stand, for a rollout with a canary or alarms (left out of a dump while unset).
    rollout: Rollout | None = Field(default=None, exclude_if=lambda value: value is None)
    # The release task run before the first swap (domain/release.py), left out of a dump while unset.
    release: ReleaseTask | None = Field(default=None, exclude_if=lambda value: value is None)
    # A succeeded deployment's instances not on its revision (failed within max_errors, never ran): see fleet.py.
    left_behind: list[str] = Field(default_factory=list, exclude_if=lambda value: not value)
    version: int = 0                  # optimistic concurrency: every save expects the version it read

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None
