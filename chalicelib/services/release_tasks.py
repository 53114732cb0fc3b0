"""The release task: a one-off run of the new image on one instance, once per deployment, before any swap.

DeploymentService hands a deployment to this module when its first attempt (or first wave) would be claimed and its
spec has `release` (domain/release.py decides when), and on each refresh while the task runs. The task goes out as
`berth exec` does: one SSM command to one instance, the script domain/container_commands.py builds from the spec's
container (its env and run options), the new revision's pinned image in place of the current one.

Nothing waits: the task's command id is indexed like a swap's, so SSM's status event for it refreshes a REST deployment
and a pipeline job's continuations refresh its own. Each SendCommand try is saved before it is made; an unanswered one
is looked for by its comment (domain/release.release_comment) and sent again only once none has appeared for
UNSENT_AFTER, so a retried or duplicated invocation never runs the task twice. While it runs, the target's lock is
pushed out as a swap's is. When it passes, the deployment's first attempt is claimed and sent, by the DeploymentService.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.container_commands import exec_commands
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import AwsCallFailed, CallUnanswered, Conflict, InstanceUnavailable
from chalicelib.domain.instance_output import choose_instances
from chalicelib.domain.progress import Phase, Progress
from chalicelib.domain.release import (
    ReleaseTask,
    release_comment,
    release_run,
    release_send_number,
    released_before,
    run_id_for,
)
from chalicelib.services.deployment_ends import DeploymentEnds
from chalicelib.services.places import Placed
from chalicelib.services.target_lock import RELEASE_CLEANUP_SECONDS, UNSENT_AFTER, TargetLock

logger = logging.getLogger(__name__)
# How many of the target's newest deployments are read to tell whether the task already ran for this digest.
EARLIER_DEPLOYMENTS = 20


class ReleaseTasks:
    def __init__(self, store: DeploymentStore, ssm: Placed[SsmGateway], scripts: dict[str, str],
                 clock: Callable[[], datetime], lock: TargetLock, ends: DeploymentEnds) -> None:
        self._store = store
        self._ssm = ssm       # the gateway where each deployment's target lives (services/places.py)
        self._scripts = scripts
        self._clock = clock
        self._lock = lock
        self._ends = ends

    def start(self, deployment: Deployment, refused_raises: bool) -> Deployment:
        """Claim the task and send it; or skip it when it already succeeded for this digest. Returns the deployment
        RELEASING, PENDING with the task SKIPPED (the rollout goes on at once), or FAILED (nothing ran)."""
        now = self._clock()
        earlier, _ = self._store.list_deployments(deployment.target, limit=EARLIER_DEPLOYMENTS)
        assert deployment.spec.release is not None
        ran_in = released_before(deployment.spec.release.command, deployment.revision.digest, earlier,
                                 deployment.deployment_id)
        if ran_in is not None:
            return self._store.save_deployment(transitions.release_skipped(deployment, ran_in, now))
        try:
            statuses = self._ssm.of(deployment).ping_statuses(deployment.spec.instances)
            choice = choose_instances(deployment.target, statuses, None, False)
        except InstanceUnavailable as exc:
            return self._ends.failed(deployment, now, f"release task not run, nothing was swapped: {exc.message}")
        claimed = self._store.save_deployment(transitions.release_started(
            deployment, choice.instance_ids[0], run_id_for(deployment.deployment_id), now))
        return self._send(claimed, "release task", refused_raises)

    def _send(self, deployment: Deployment, cause: str, refused_raises: bool = False) -> Deployment:
        """Make the try the task's record names. Nothing raises once SendCommand was called, except SSM's refusal
        when `refused_raises` (then nothing ran)."""
        task = _task(deployment)
        assert task.instance_id is not None
        run = release_run(deployment)
        try:
            command_id = self._ssm.of(deployment).send_to_instances(
                [task.instance_id], exec_commands(run, self._scripts, install_docker=True),
                run.timeout_seconds + RELEASE_CLEANUP_SECONDS,
                release_comment(deployment.deployment_id, task.sends), None, "berth-release")
        except CallUnanswered as exc:
            return self._unanswered(deployment, cause, exc)
        except AwsCallFailed as exc:
            if refused_raises:
                raise
            return self._ends.settle(deployment, transitions.release_failed(
                deployment, "NotSent", None, f"could not send the release task: {exc.message}", self._clock()))
        logger.info("release task sent", extra={"deployment_id": deployment.deployment_id, "command_id": command_id,
                                                "instance": task.instance_id, "image": task.image})
        try:
            return self._record_sent(deployment, command_id, cause)
        except (AwsCallFailed, Conflict) as exc:
            logger.warning("release task sent but not recorded; the next refresh finds it by its comment",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})
            return deployment

    def _unanswered(self, deployment: Deployment, cause: str, exc: CallUnanswered) -> Deployment:
        logger.warning("SendCommand of the release task went unanswered; looking for it by its comment",
                       extra={"deployment_id": deployment.deployment_id, "error": exc.message})
        try:
            found = self._find_sent(deployment)
            if found is not None:
                return self._record_sent(deployment, found, f"{cause}; found by its comment ({exc.message})")
            return self._store.save_deployment(transitions.release_unanswered(deployment, exc.message, cause,
                                                                              self._clock()))
        except (AwsCallFailed, Conflict):
            return deployment

    def _find_sent(self, deployment: Deployment) -> str | None:
        """The task's command, found by its comment; should two tries have landed, the later ones are cancelled."""
        task = _task(deployment)
        deployment_id = deployment.deployment_id

        def number(comment: str) -> int | None:
            return release_send_number(comment, deployment_id)

        found = self._ssm.of(deployment).find_commands(lambda comment: number(comment) is not None,
                                        task.started_at or deployment.created_at)
        ordered = [command_id for _, command_id in sorted(found, key=lambda item: number(item[0]) or 0)]
        for duplicate in ordered[1:]:
            logger.error("two release commands for one deployment; cancelling the later one",
                         extra={"deployment_id": deployment_id, "command_id": duplicate})
            self._ssm.of(deployment).cancel(duplicate)
        return ordered[0] if ordered else None

    def _record_sent(self, deployment: Deployment, command_id: str, cause: str) -> Deployment:
        now = self._clock()
        # The index first: SSM's status event for the task finds the deployment by it, even if the save fails.
        self._store.index_command(command_id, deployment.deployment_id, int((now + timedelta(days=7)).timestamp()))
        return self._store.save_deployment(transitions.release_sent(deployment, command_id, cause, now))

    def watch(self, deployment: Deployment) -> tuple[Deployment, Progress | None]:
        """A refresh while the task runs: its command found or sent again, its output read once it ended. Returns the
        deployment (RELEASED: the caller sends the first attempt) and the progress to show."""
        task = _task(deployment)
        now = self._clock()
        if task.command_id is None:
            return self._recover_unrecorded_send(deployment, now), None
        output = self._ssm.of(deployment).invocation_output(task.command_id, task.instance_id or "")
        if not output.done:
            self._keep_lock(deployment, task, now)
            return deployment, Progress(Phase.RUNNING, {}, 0, f"{task.describe()} running on {task.instance_id} "
                                                              f"({output.status})")
        if output.status == "Success" and output.exit_code == 0:
            logger.info("release task passed", extra={"deployment_id": deployment.deployment_id})
            return self._store.save_deployment(transitions.release_passed(deployment, output.output, now)), None
        logger.warning("release task failed", extra={"deployment_id": deployment.deployment_id,
                                                     "status": output.status, "exit_code": output.exit_code})
        finished = transitions.release_failed(deployment, output.status, output.exit_code, output.output, now)
        return self._ends.settle(deployment, finished), None

    def _recover_unrecorded_send(self, deployment: Deployment, now: datetime) -> Deployment:
        """The task has no command id: its send went unanswered, or the sender died around it. Look for it by its
        comment; only once none has appeared for UNSENT_AFTER is it sent again, by a deployment that holds its
        target."""
        task = _task(deployment)
        found = self._find_sent(deployment)
        if found is not None:
            return self._record_sent(deployment, found, "recovered: the release task was sent but not recorded")
        if now - (task.sent_at or deployment.created_at) < UNSENT_AFTER:
            return deployment
        if not self._lock.hold(deployment, now):
            return self._ends.superseded(deployment, now, "release task not sent again")
        again = self._store.save_deployment(transitions.release_sent_again(deployment, now))
        return self._send(again, "release task sent again: no command carried its comment")

    def _keep_lock(self, deployment: Deployment, task: ReleaseTask, now: datetime) -> None:
        ttl = self._lock.ttl(deployment)
        if task.sent_at is not None and now - task.sent_at >= timedelta(seconds=ttl / 2):
            self._store.extend_lock(deployment.target, deployment.deployment_id, int(now.timestamp()) + ttl)


def _task(deployment: Deployment) -> ReleaseTask:
    assert deployment.release is not None      # only a deployment with a release task is handed here
    return deployment.release
