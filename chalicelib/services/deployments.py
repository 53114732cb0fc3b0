"""Starting and following deployments: shared by the pipeline action, the REST API and the retry handlers.

The record is written before any command is sent, and the attempt is saved (without a command id) before SendCommand,
so a crash between the two is visible: a later refresh finds an attempt with no command and sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ecr import ImageRegistry
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.command import DeployCommand, build_shell_commands
from chalicelib.domain.deployment import Attempt, Decision, Deployment, DeploymentStatus, Revision
from chalicelib.domain.errors import AwsCallFailed, InvalidRevision
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.progress import (
    CommandState,
    Invocation,
    Phase,
    Progress,
    assess,
    keep_tails,
    progress_while_running,
    success_from_counts,
)
from chalicelib.domain.retry import GiveUp
from chalicelib.domain.spec import TargetSpec, Trigger
from chalicelib.observability import Telemetry
from chalicelib.services.retries import SsmRetries

logger = logging.getLogger(__name__)
# Failed instances whose full output (GetCommandInvocation) is fetched per refresh; the rest keep SSM's short cut.
FULL_OUTPUT_FOR = 5
# A saved attempt with no command id this old means the sender died before SendCommand answered.
UNSENT_AFTER = timedelta(seconds=90)


def command_comment(deployment_id: str, attempt: int) -> str:
    return f"berth {deployment_id} attempt {attempt}"


@dataclass(frozen=True)
class Followed:
    deployment: Deployment
    progress: Progress | None


class DeploymentService:
    def __init__(self, store: DeploymentStore, ssm: SsmGateway, instances: InstanceDirectory,
                 registry: ImageRegistry, scripts: dict[str, str], clock: Callable[[], datetime],
                 new_id: Callable[[], str], lock_slack_seconds: int = 900, retries: SsmRetries | None = None,
                 telemetry: Telemetry | None = None) -> None:
        self._store = store
        self._ssm = ssm
        self._instances = instances
        self._registry = registry
        self._scripts = scripts
        self._clock = clock
        self._new_id = new_id
        self._lock_slack = lock_slack_seconds
        self._retries = retries
        self._telemetry = telemetry or Telemetry()

    def resolve_revision(self, spec: TargetSpec, image: str) -> Revision:
        """Validate the image against the spec and pin it to a digest where the registry can say."""
        ref = parse_image_ref(image)
        if ref.is_mutable and not spec.allow_mutable_tags:
            raise InvalidRevision(
                f"image {image!r} has no tag or a mutable tag ({ref.tag or 'none'}): deploy an immutable tag or a "
                "digest, or set allow_mutable_tags: true on the target"
            )
        resolved = self._registry.resolve(ref)
        return Revision(image=str(ref), digest=resolved.digest)

    def start(self, spec: TargetSpec, revision: Revision, trigger: Trigger, caller: str,
              job_id: str | None = None) -> Deployment:
        """Take the target's lock, record the deployment, then send its first attempt. Raises TargetBusy."""
        now = self._clock()
        deployment_id = self._new_id()
        self._store.acquire_lock(spec.target, deployment_id, job_id, int(now.timestamp()),
                                 spec.rollout.timeout_seconds + self._lock_slack)
        try:
            target = self._store.get_target(spec.target)
            deployment = Deployment(
                deployment_id=deployment_id, target=spec.target, spec=spec, revision=revision,
                previous_revision=target.current_revision if target else None, trigger=trigger, caller=caller,
                job_id=job_id, created_at=now, updated_at=now,
                history=[Decision(at=now, action="created", detail=f"{revision.pinned} by {caller}", cause=trigger)],
            )
            self._store.create_deployment(deployment)
        except Exception:
            self._store.release_lock(spec.target, deployment_id)
            raise
        self._telemetry.count("DeploymentsStarted")
        return self.send_attempt(deployment, cause=trigger)

    def send_attempt(self, deployment: Deployment, cause: str) -> Deployment:
        """Claim a new attempt in the record, then send its command, then record the command id."""
        now = self._clock()
        try:
            expected = self._instances.running_instances(deployment.spec.instances)
        except InvalidRevision as exc:  # e.g. unknown instance ids: the record exists, so end it and free the lock
            return self._finish(deployment, DeploymentStatus.FAILED, now, exc.message)
        if not expected:
            return self._finish(deployment, DeploymentStatus.FAILED, now,
                                "no running instance matches the target's instances; check the tags or ids")
        attempt = Attempt(number=len(deployment.attempts) + 1, started_at=now, expected_instances=expected)
        if deployment.attempts:
            ttl = deployment.spec.rollout.timeout_seconds + self._lock_slack
            self._store.extend_lock(deployment.target, deployment.deployment_id, int(now.timestamp()) + ttl)
        deployment = self._store.save_deployment(deployment.model_copy(update={
            "attempts": [*deployment.attempts, attempt], "status": DeploymentStatus.IN_PROGRESS, "updated_at": now}))
        return self._send(deployment, cause)

    def _send(self, deployment: Deployment, cause: str) -> Deployment:
        attempt = deployment.attempts[-1]
        command = DeployCommand(deployment.deployment_id, parse_image_ref(deployment.revision.pinned),
                                deployment.spec.container, deployment.spec.health_check,
                                deployment.spec.allow_mutable_tags)
        try:
            command_id = self._ssm.send_deploy_command(
                deployment.spec.instances, build_shell_commands(command, self._scripts), deployment.spec.rollout,
                comment=command_comment(deployment.deployment_id, attempt.number))
        except AwsCallFailed as exc:
            return self._finish(deployment, DeploymentStatus.FAILED, self._clock(),
                                f"could not send the deploy command, nothing ran: {exc.message}")
        return self._record_sent(deployment, command_id, cause)

    def _record_sent(self, deployment: Deployment, command_id: str, cause: str) -> Deployment:
        now = self._clock()
        # The index first: SSM's status events find the deployment by it, even if the save below fails.
        self._store.index_command(command_id, deployment.deployment_id, int((now + timedelta(days=7)).timestamp()))
        sent = deployment.attempts[-1].model_copy(update={"command_id": command_id})
        return self._store.save_deployment(deployment.model_copy(update={
            "attempts": [*deployment.attempts[:-1], sent], "updated_at": now,
            "history": [*deployment.history, Decision(
                at=now, action="dispatched", cause=cause,
                detail=f"attempt {sent.number}: SSM command {command_id} to {len(sent.expected_instances)} instances")],
        }))

    def follow(self, deployment_id: str) -> Followed:
        """Refresh a deployment from SSM and settle it when its command is over."""
        deployment = self._store.get_deployment(deployment_id)
        attempt = deployment.current_attempt
        if deployment.status.is_final or deployment.status == DeploymentStatus.RETRYING:
            return Followed(deployment, None)
        if attempt is None:
            # Recorded, but whoever recorded it failed before its first attempt was saved: nothing was sent.
            return Followed(self.send_attempt(deployment, cause="resumed: the first attempt was never saved"), None)
        if attempt.command_id is None:
            return Followed(self._recover_unrecorded_send(deployment), None)
        state = self._ssm.command_state(attempt.command_id)
        if state is None or not state.over:
            # While the command runs, SSM's counts are the progress: one call at any fleet size. Each instance's
            # result is read once, when the command is over.
            now = self._clock()
            self._keep_lock(deployment, attempt, now)
            progress = progress_while_running(attempt.expected_instances, state)
            running = attempt.model_copy(update={"tally": progress.tally})
            return Followed(self._store.save_deployment(deployment.model_copy(update={
                "attempts": [*deployment.attempts[:-1], running], "updated_at": now})), progress)
        progress = self._final_progress(deployment, attempt.command_id, attempt.expected_instances, state)
        now = self._clock()
        updated_attempt = attempt.model_copy(update={"instances": progress.instances, "tally": progress.tally})
        deployment = deployment.model_copy(update={"attempts": [*deployment.attempts[:-1], updated_attempt]})
        if progress.phase == Phase.RUNNING:
            return Followed(self._store.save_deployment(deployment.model_copy(update={
                "attempts": [*deployment.attempts[:-1], _bounded(updated_attempt)], "updated_at": now})), progress)
        if progress.phase == Phase.SUCCEEDED:
            return Followed(self._finish(deployment, DeploymentStatus.SUCCEEDED, now, progress.summary,
                                         digests=progress.digests), progress)
        return Followed(self._after_failure(deployment, progress.failure_message, now), progress)

    def _keep_lock(self, deployment: Deployment, attempt: Attempt, now: datetime) -> None:
        """The lock lasts the command's timeout plus some slack from the attempt's start, but a rollout a few instances
        at a time can take longer: past half of that, each poll pushes the expiry out again, so no second deployment
        can take the target while this one still runs."""
        ttl = deployment.spec.rollout.timeout_seconds + self._lock_slack
        if now - attempt.started_at >= timedelta(seconds=ttl / 2):
            self._store.extend_lock(deployment.target, deployment.deployment_id, int(now.timestamp()) + ttl)

    def _after_failure(self, deployment: Deployment, message: str, now: datetime) -> Deployment:
        """A failed attempt either becomes a scheduled retry (the deployment stays open) or the final failure."""
        if self._retries is None:
            return self._finish(deployment, DeploymentStatus.FAILED, now, message)
        failure, decision = self._retries.decide(deployment, now)
        number = len(deployment.attempts)
        cause = f"attempt {number} failed ({failure.value}): {message[:500]}"
        if isinstance(decision, GiveUp):
            finished = self._finish(deployment, DeploymentStatus.FAILED, now, f"{message} Gave up: {decision.reason}.",
                                    decision=Decision(at=now, action="gave-up", detail=decision.reason, cause=cause))
            self._retries.record_failure(deployment.target, now, decision.open_breaker)
            self._telemetry.count("RetriesGivenUp")
            return finished
        name = self._retries.schedule(deployment, decision, now)
        ended = _bounded(deployment.attempts[-1]).model_copy(update={"ended_at": now, "outcome": message})
        saved = self._store.save_deployment(deployment.model_copy(update={
            "status": DeploymentStatus.RETRYING, "attempts": [*deployment.attempts[:-1], ended], "updated_at": now,
            "message": f"attempt {number} failed; attempt {decision.attempt} scheduled at {decision.at:%H:%M:%S}Z",
            "history": [*deployment.history, Decision(
                at=now, action="retry-scheduled", cause=cause,
                detail=f"attempt {decision.attempt} at {decision.at.isoformat()} (in {decision.delay_seconds:.0f}s, "
                       f"schedule {name}): {decision.reason}")]}))
        self._retries.record_failure(deployment.target, now, open_breaker=False)
        self._telemetry.count("RetriesScheduled")
        return saved

    def retry(self, deployment_id: str, attempt: int) -> Deployment | None:
        """Carry out a scheduled retry; None when it is not (or no longer) due: a duplicate or a late schedule."""
        deployment = self._store.get_deployment(deployment_id)
        if deployment.status != DeploymentStatus.RETRYING or len(deployment.attempts) != attempt - 1:
            logger.info("retry not due; nothing sent", extra={"deployment_id": deployment_id, "attempt": attempt})
            return None
        return self.send_attempt(deployment, cause=f"scheduled retry, attempt {attempt}")

    def _expected_now(self, expected: list[str], invocations: list[Invocation], state: CommandState) -> list[str]:
        """Once the command is over, an expected instance without an invocation counts as never having run it, unless
        it is not running (stopped since, or never started): then it was not part of this deployment."""
        if not state.over:
            return expected
        missing = sorted(set(expected) - {inv.instance_id for inv in invocations})
        if not missing:
            return expected
        running = self._instances.running_among(missing)
        return [instance for instance in expected if instance not in missing or instance in running]

    def _recover_unrecorded_send(self, deployment: Deployment) -> Deployment:
        """An attempt without a command id: the sender failed around SendCommand. SSM has no idempotency token, so
        look for the command by its comment before sending it again; only an old enough attempt is re-sent."""
        attempt = deployment.attempts[-1]
        found = self._ssm.find_command(command_comment(deployment.deployment_id, attempt.number), attempt.started_at)
        if found is not None:
            return self._record_sent(deployment, found, cause="recovered: the command was sent but not recorded")
        if self._clock() - attempt.started_at < UNSENT_AFTER:
            return deployment
        logger.warning("attempt recorded but never sent; sending it now",
                       extra={"deployment_id": deployment.deployment_id})
        return self._send(deployment, cause="resent: the command was never sent")

    def _final_progress(self, deployment: Deployment, command_id: str, expected: list[str], state: CommandState
                        ) -> Progress:
        """Where a command that is over leaves the deployment."""
        if deployment.revision.digest is not None:  # otherwise an instance's output must say what it pulled
            counted = success_from_counts(expected, state)
            if counted is not None:
                return counted
        invocations = self._final_invocations(deployment, command_id, state)
        max_errors = deployment.spec.rollout.max_errors
        expected = self._expected_now(expected, invocations, state)
        progress = assess(expected, invocations, state.status, max_errors)
        if progress.phase == Phase.FAILED:
            invocations = self._with_full_output(command_id, invocations)
            progress = assess(expected, invocations, state.status, max_errors)
        return progress

    def _final_invocations(self, deployment: Deployment, command_id: str, state: CommandState) -> list[Invocation]:
        """Every instance's result, read once the command is over. When SSM's counts say every instance succeeded and
        the digest is already pinned, statuses are all berth needs: a page without exit codes and output is cheaper to
        read. Anything but Success in it, and the pages are read again in full."""
        clean = (state.error_count == 0 and state.delivery_timed_out_count == 0
                 and state.completed_count == state.target_count and deployment.revision.digest is not None)
        if clean:
            invocations = self._ssm.list_invocations(command_id, details=False)
            if all(inv.status == "Success" for inv in invocations):
                return invocations
        return self._ssm.list_invocations(command_id, details=True)

    def _with_full_output(self, command_id: str, invocations: list[Invocation]) -> list[Invocation]:
        """Swap SSM's 2,500-character cut for the fuller output of the first few failed instances."""
        failed = sorted((inv for inv in invocations if inv.status != "Success" or inv.response_code not in (0, None)),
                        key=lambda inv: inv.instance_id)[:FULL_OUTPUT_FOR]
        fuller = {inv.instance_id: self._ssm.full_output(command_id, inv.instance_id) for inv in failed}
        return [replace(inv, output=fuller[inv.instance_id]) if inv.instance_id in fuller else inv
                for inv in invocations]

    def _finish(self, deployment: Deployment, status: DeploymentStatus, now: datetime, message: str,
                digests: set[str] | None = None, decision: Decision | None = None) -> Deployment:
        revision = deployment.revision
        if status == DeploymentStatus.SUCCEEDED and revision.digest is None and digests and len(digests) == 1:
            revision = revision.model_copy(update={"digest": next(iter(digests))})
        attempts = deployment.attempts
        if attempts:
            attempts = [*attempts[:-1], _bounded(attempts[-1]).model_copy(update={
                "ended_at": now, "outcome": "succeeded" if status == DeploymentStatus.SUCCEEDED else message})]
        # The target first (its revision and lock, in one transaction), then the record: should anything fail in
        # between, the record is still open and the next refresh finishes it again, finding the target settled.
        self._store.settle_target(deployment.target, deployment.deployment_id,
                                  revision if status == DeploymentStatus.SUCCEEDED else None, deployment.created_at)
        finished = self._store.save_deployment(deployment.model_copy(update={
            "status": status, "revision": revision, "attempts": attempts, "updated_at": now, "message": message,
            "history": [*deployment.history, *([decision] if decision else []),
                        Decision(at=now, action=status.value.lower(), detail=message[:1000])],
        }))
        self._telemetry.count(f"Deployments{status.value.capitalize()}")
        self._telemetry.seconds("DeploymentDurationSeconds", (now - deployment.created_at).total_seconds())
        return finished


def _bounded(attempt: Attempt) -> Attempt:
    """The attempt as the record keeps it, once its results have been used (see keep_tails)."""
    return attempt.model_copy(update={"instances": keep_tails(attempt.instances)})
