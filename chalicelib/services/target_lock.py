"""Who may act on a target: one deployment at a time, and never one the target has moved on from.

The lock (DeploymentStore, TARGET#<name>/LOCK) is taken in the same transaction that records the deployment and
writes the target's LATEST marker. It expires, so a deployment berth lost track of cannot block its target forever;
but expiry alone never hands the target over:

- An expired lock is taken over only once SSM says its deployment's command is over (or that it has none: its
  deployment ended, waits for a retry, or never got a command out). A deployment nobody polls (a REST one, whose
  events were lost) keeps its target for as long as its command runs, and the check pushes its lock out again.
- Before a deployment acts again after the moment it took the target (a scheduled retry fires, an unsent attempt is
  sent again, a pipeline job resumes a deployment), it holds the target again: the lock must be its own or free, and
  no deployment may have started on the target since (LATEST). Otherwise the target moved on, and the deployment
  gives up, saying which deployment took it. So a retry never ships an old image over a newer one, and a lock that
  lapsed while a retry waited is taken back only if nobody else deployed meanwhile.
- A failed attempt whose retry is scheduled holds the target until the retry is due (plus the slack), so nobody
  deploys on top of a deployment that is not over; a person who must can cancel it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Attempt, Deployment, DeploymentStatus, send_number
from chalicelib.domain.errors import DeploymentNotFound, TargetBusy
from chalicelib.domain.release import ReleasePhase
from chalicelib.domain.target import Lock
from chalicelib.services.places import Placed

logger = logging.getLogger(__name__)
# A send older than this that left no command carrying its comment never reached SSM: SDK timeouts are 5 s to
# connect and 20 s to read, and SSM lists a command it accepted within seconds.
UNSENT_AFTER = timedelta(seconds=90)
# A release task's SSM executionTimeout is its own timeout plus this, to stop and remove a run that overstays.
RELEASE_CLEANUP_SECONDS = 30


def sent_commands(ssm: SsmGateway, deployment: Deployment, attempt: Attempt) -> list[str]:
    """Ids of the commands SSM holds for this attempt (found by their comments), in the order they were sent."""
    def number(comment: str) -> int | None:
        return send_number(comment, deployment.deployment_id, attempt.number)

    found = ssm.find_commands(lambda comment: number(comment) is not None, attempt.started_at)
    return [command_id for _, command_id in sorted(found, key=lambda item: number(item[0]) or 0)]


class TargetLock:
    def __init__(self, store: DeploymentStore, ssm: Placed[SsmGateway], lock_slack_seconds: int) -> None:
        self._store = store
        self._ssm = ssm
        self._slack = lock_slack_seconds

    def ttl(self, deployment: Deployment) -> int:
        """An attempt's hold on its target: the command's timeout (or the release task's, if longer) plus some slack."""
        release = deployment.spec.release
        longest = max(deployment.spec.rollout.timeout_seconds,
                      release.timeout_seconds + RELEASE_CLEANUP_SECONDS if release is not None else 0)
        return longest + self._slack

    def take(self, deployment: Deployment, now: datetime) -> None:
        """Take the target and record the deployment (one transaction). TargetBusy while another deployment holds
        it, or holds an expired lock with its command still running."""
        replacing: Lock | None = None
        for _ in range(3):
            holder = self._store.start_deployment(deployment, self.ttl(deployment), replacing)
            if holder is None or holder.deployment_id == deployment.deployment_id:
                return          # taken (the second case: this very write, whose answer was lost and sent again)
            if holder.expires_at >= int(now.timestamp()) or self._still_running(holder, now):
                raise TargetBusy(deployment.target, holder.deployment_id)
            logger.info("taking over an expired lock whose deployment has nothing running",
                        extra={"deployment_id": deployment.deployment_id, "previous": holder.deployment_id})
            replacing = holder
        raise TargetBusy(deployment.target, replacing.deployment_id if replacing else "(unknown)")

    def hold(self, deployment: Deployment, now: datetime, until: datetime | None = None) -> bool:
        """Hold the target for `deployment` until `until` (by default a whole attempt from now); False when the target
        moved on (see the module's docstring)."""
        expires = until or now + timedelta(seconds=self.ttl(deployment))
        return self._store.hold_target(deployment.target, deployment.deployment_id, deployment.job_id,
                                       int(now.timestamp()), int(expires.timestamp()))

    def keep(self, deployment: Deployment, attempt: Attempt, now: datetime) -> None:
        """Past half of its lock's time, each poll that sees the command running pushes the lock out again: a rollout
        a few instances at a time can outlast the command's timeout."""
        ttl = self.ttl(deployment)
        if now - attempt.started_at >= timedelta(seconds=ttl / 2):
            self._store.extend_lock(deployment.target, deployment.deployment_id, int(now.timestamp()) + ttl)

    def moved_on(self, deployment: Deployment) -> str:
        """Why `deployment` no longer holds its target, naming the deployment that took it."""
        latest = self._store.latest_start(deployment.target)
        if latest is not None and latest.deployment_id != deployment.deployment_id:
            return f"the target moved on: deployment {latest.deployment_id} started on it since"
        lock = self._store.get_lock(deployment.target)
        if lock is not None and lock.deployment_id != deployment.deployment_id:
            return f"the target moved on: deployment {lock.deployment_id} holds it"
        return "the target moved on: its lock is held by another deployment"

    def _still_running(self, lock: Lock, now: datetime) -> bool:
        """Whether the deployment holding an expired lock may still have a command on the target, by SSM's word. While
        it may, its lock is pushed out again: no event comes while a command runs, and nobody may be polling."""
        try:
            holder = self._store.get_deployment(lock.deployment_id)
        except DeploymentNotFound:
            return False
        running = self._may_be_running(holder, now)
        if running:
            self._store.extend_lock(holder.target, holder.deployment_id, int(now.timestamp()) + self.ttl(holder))
        return running

    def _may_be_running(self, holder: Deployment, now: datetime) -> bool:
        if holder.status.is_final or holder.status == DeploymentStatus.RETRYING:
            return False      # nothing runs; a retry holds the target again before it sends anything, or gives up
        attempt = holder.current_attempt
        release = holder.release
        if attempt is None and release is not None and release.phase == ReleasePhase.RELEASING:
            if release.command_id is None:      # a send may still land; later, it never will
                return now - (release.sent_at or holder.created_at) < UNSENT_AFTER
            state = self._ssm.of(holder).command_state(release.command_id)
            return state is None or not state.over
        if attempt is None:
            return now - holder.created_at < UNSENT_AFTER       # being started right now, or never will be
        commands = [attempt.command_id] if attempt.command_id else sent_commands(self._ssm.of(holder), holder, attempt)
        if not commands:
            return now - attempt.last_send_at < UNSENT_AFTER     # a send may still land; later, it never will
        for command_id in commands:
            state = self._ssm.of(holder).command_state(command_id)
            if state is None or not state.over:
                return True
        return False
