"""The release task of a deployment: where it runs, where it stands, and whether it runs at all. Pure.

A spec with `release` (spec/release.py) has the task run once per deployment, before its first swap command (or first
wave). While it runs the deployment is IN_PROGRESS in the RELEASING phase, with no attempt yet:

    PENDING --release_started--> IN_PROGRESS/RELEASING (the task's SSM command claimed, saved before SendCommand)
    RELEASING: release_sent, release_unanswered, release_sent_again
    RELEASING --release_passed--> IN_PROGRESS/RELEASED --attempt_started | wave_sent--> the rollout, as without it
    RELEASING --release_failed--> FAILED (nothing was swapped; the message carries the task's output tail)
    PENDING --release_skipped--> PENDING/SKIPPED (it succeeded for this digest before: see `released_before`)

The transitions are in transitions/release.py. Like a swap's tries, each SendCommand try of the task is saved before
it is made and carries a comment unique to the deployment and try (`release_comment`), so a lost answer is looked for
by it before anything is sent again. A rollback, a sync and a join never run it: they bring instances to a revision
whose release already ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from .container_commands import OneOffRun

if TYPE_CHECKING:
    from .deployment import Deployment

# Triggers that run the task: a deployment of a new revision. A rollback, a sync and a join do not.
RELEASE_TRIGGERS = frozenset({"pipeline", "api", "retry"})
# The output a failure message and the record keep: the end of it, where the error is.
RELEASE_TAIL = 2000
# The run's container is named berth-exec-<run_id>, removed by that name if it overstays.
RUN_ID_PREFIX = "release-"


class ReleasePhase(StrEnum):
    RELEASING = "RELEASING"    # the task's command is claimed, or out
    RELEASED = "RELEASED"      # it exited 0: the rollout goes on
    FAILED = "FAILED"          # it exited non-zero, timed out or never ran: the deployment failed, nothing swapped
    SKIPPED = "SKIPPED"        # it succeeded for this digest and command in an earlier deployment (`ran_in`)


class ReleaseTask(BaseModel):
    """The release task of one deployment: the instance it runs on, its SSM command, and its outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str]
    phase: ReleasePhase = ReleasePhase.RELEASING
    instance_id: str | None = None
    image: str | None = None           # the new revision, pinned
    run_id: str | None = None
    started_at: datetime | None = None
    command_id: str | None = None
    sends: int = 0                     # SendCommand tries, each saved before it is made
    sent_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    status: str | None = None          # SSM's invocation status once it ended
    output_tail: str = ""
    ran_in: str | None = None          # SKIPPED: the deployment whose release task ran it

    @property
    def done(self) -> bool:
        """The rollout may go on: the task passed, or did not need to run."""
        return self.phase in (ReleasePhase.RELEASED, ReleasePhase.SKIPPED)

    def describe(self) -> str:
        return f"release task {' '.join(self.command)[:200]!r}"


def release_comment(deployment_id: str, send: int = 1) -> str:
    """The SSM Comment of one SendCommand try of the task (at most 100 characters)."""
    base = f"berth {deployment_id} release"
    return base if send <= 1 else f"{base} send {send}"


def release_send_number(comment: str, deployment_id: str) -> int | None:
    """Which try of the task a command's Comment names, or None when it is not one of its tries."""
    base = release_comment(deployment_id)
    if comment == base:
        return 1
    number = comment.removeprefix(f"{base} send ")
    return int(number) if number != comment and number.isdigit() else None


def run_id_for(deployment_id: str) -> str:
    return RUN_ID_PREFIX + deployment_id


def release_due(d: Deployment) -> bool:
    """Whether the task must be started now: the spec asks for one, the trigger ships a new revision, and the
    deployment has neither started it nor sent a swap."""
    return (d.spec.release is not None and d.trigger in RELEASE_TRIGGERS and d.release is None
            and not d.attempts and d.rollout is None)


def released_before(command: list[str], digest: str | None, earlier: Iterable[Deployment],
                    deployment_id: str | None = None) -> str | None:
    """The earlier deployment whose release task already succeeded for this digest and command, so a deployment of
    them skips it; None when it must run.

    Only the newest earlier deployment that ran (or tried) a release task counts, newest first: a retry of a deployment
    whose task passed but whose swap failed does not migrate twice, while a revision whose task ran before another
    revision's did (deploy A, deploy B, redeploy A) runs it again, as the other may have changed what it acts on."""
    if digest is None:
        return None
    for other in earlier:
        release = other.release
        if other.deployment_id == deployment_id or release is None or release.phase == ReleasePhase.SKIPPED:
            continue
        same = (release.phase == ReleasePhase.RELEASED and release.command == list(command)
                and other.revision.digest == digest)
        return other.deployment_id if same else None
    return None


@dataclass(frozen=True)
class PlannedRelease:
    """What the plan says of the release task: the command, where it would run, or which deployment ran it."""

    command: list[str]
    timeout_seconds: int
    instance_id: str | None          # the first Online instance by id; None: none is Online (the deployment fails)
    ran_in: str | None = None        # it succeeded for this digest in that deployment: not run again


def release_run(d: Deployment) -> OneOffRun:
    """The task as a one-off run (container_commands.exec_commands makes its script): the spec's container, the new
    revision pinned, the release's command and timeout."""
    task, release = d.release, d.spec.release
    assert task is not None and task.run_id and task.image and release is not None
    return OneOffRun(task.run_id, task.image, d.spec.container, tuple(task.command), release.timeout_seconds)


def output_tail(output: str, limit: int = RELEASE_TAIL) -> str:
    return output if len(output) <= limit else "..." + output[-limit:]


def failure_message(release: ReleaseTask, status: str, exit_code: int | None, tail: str) -> str:
    """Why the deployment failed: the task, where, how it ended, and the end of its output."""
    how = f"exited {exit_code}" if exit_code is not None else f"ended {status}"
    if exit_code in (124, 137):
        how = f"was stopped after its timeout (exit {exit_code})"
    return (f"{release.describe()} {how} on {release.instance_id}; nothing was swapped. "
            f"Output tail:\n{tail or '(no output)'}")
