"""Sending an attempt's command to SSM, and finding it again when the send's answer was lost.

Each SendCommand try is saved in the attempt before it is made, so a crash or an unanswered send is visible: a later
refresh finds an attempt with no command id and looks for its command by the try's comment (SSM has no idempotency
token; the comment is berth's). Only once no command has carried it for UNSENT_AFTER is the attempt sent again, by
a deployment that still holds its target.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.command import DeployCommand, build_shell_commands
from chalicelib.domain.deployment import Attempt, Deployment, command_comment
from chalicelib.domain.errors import AwsCallFailed, CallUnanswered, Conflict
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.rollout import attempt_rollout
from chalicelib.domain.spec import InstancesSpec, RolloutSpec
from chalicelib.services.deployment_ends import DeploymentEnds
from chalicelib.services.places import Placed
from chalicelib.services.target_lock import UNSENT_AFTER, TargetLock, sent_commands

logger = logging.getLogger(__name__)


class CommandSender:
    def __init__(self, store: DeploymentStore, ssm: Placed[SsmGateway], scripts: dict[str, str],
                 clock: Callable[[], datetime], lock: TargetLock, ends: DeploymentEnds) -> None:
        self._store = store
        self._ssm = ssm
        self._scripts = scripts
        self._clock = clock
        self._lock = lock
        self._ends = ends

    def send(self, deployment: Deployment, cause: str, refused_raises: bool = False) -> Deployment:
        """Make the try the attempt's record names. From here on the command may exist: nothing raises out of this
        once SendCommand was called, except SSM's refusal when `refused_raises` (then nothing ran)."""
        attempt = deployment.attempts[-1]
        command = DeployCommand(deployment.deployment_id, parse_image_ref(attempt.image or deployment.revision.pinned),
                                deployment.spec.container, deployment.spec.health_check,
                                deployment.spec.allow_mutable_tags)
        # A wave or a rollback goes to its own instances by id; a plain attempt to the target as the spec names it.
        targets = deployment.spec.instances if deployment.rollout is None else InstancesSpec(
            ids=attempt.expected_instances)
        try:
            command_id = self._ssm.of(deployment).send_deploy_command(
                targets, build_shell_commands(command, self._scripts), _rollout_of(deployment),
                comment=command_comment(deployment.deployment_id, attempt.number, attempt.sends))
        except CallUnanswered as exc:
            return self._unanswered(deployment, cause, exc)
        except AwsCallFailed as exc:
            if refused_raises:
                raise
            return self._ends.failed(deployment, self._clock(),
                                     f"could not send the deploy command, nothing ran: {exc.message}")
        try:
            return self._record_sent(deployment, command_id, cause)
        except (AwsCallFailed, Conflict) as exc:
            logger.warning("command sent but not recorded; the next refresh finds it by its comment",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})
            return deployment

    def _unanswered(self, deployment: Deployment, cause: str, exc: CallUnanswered) -> Deployment:
        """SendCommand got no answer: the command may be running. Look for it now; if SSM does not list it yet, the
        attempt stays unsent and later refreshes look again (and send again only once it is proven absent)."""
        attempt = deployment.attempts[-1]
        logger.warning("SendCommand went unanswered; looking for the command by its comment",
                       extra={"deployment_id": deployment.deployment_id, "error": exc.message})
        try:
            found = self._find_sent(deployment, attempt)
            if found is not None:
                return self._record_sent(deployment, found, f"{cause}; found by its comment ({exc.message})")
            now = self._clock()
            return self._store.save_deployment(transitions.send_unanswered(
                deployment, exc.message, int(UNSENT_AFTER.total_seconds()), cause, now))
        except (AwsCallFailed, Conflict):
            return deployment

    def recover_unrecorded_send(self, deployment: Deployment) -> Deployment:
        """An attempt without a command id: its send went unanswered, or the sender died around it. Look for the
        command by its comment; only once none has appeared for UNSENT_AFTER since the last try is the attempt sent
        again (a new try, with a comment of its own), and only by a deployment that still holds its target."""
        attempt = deployment.attempts[-1]
        found = self._find_sent(deployment, attempt)
        if found is not None:
            return self._record_sent(deployment, found, cause="recovered: the command was sent but not recorded")
        now = self._clock()
        if now - attempt.last_send_at < UNSENT_AFTER:
            return deployment
        if not self._lock.hold(deployment, now):
            return self._ends.superseded(deployment, now, f"attempt {attempt.number} not sent again")
        logger.warning("attempt recorded but its command never reached SSM; sending it again",
                       extra={"deployment_id": deployment.deployment_id})
        deployment = self._store.save_deployment(transitions.sent_again(deployment, now))
        waited = int((now - attempt.last_send_at).total_seconds())
        return self.send(deployment, cause=f"sent again: no command carried the attempt's comment {waited} s after "
                                           "its last send")

    def _find_sent(self, deployment: Deployment, attempt: Attempt) -> str | None:
        """The attempt's command, found by its comment. Should two tries of one attempt both have landed, the later
        ones are cancelled: never two commands on one target."""
        found = sent_commands(self._ssm.of(deployment), deployment, attempt)
        for duplicate in found[1:]:
            logger.error("two commands for one attempt; cancelling the later one",
                         extra={"deployment_id": deployment.deployment_id, "command_id": duplicate})
            self._ssm.of(deployment).cancel(duplicate)
        return found[0] if found else None

    def _record_sent(self, deployment: Deployment, command_id: str, cause: str) -> Deployment:
        now = self._clock()
        # The index first: SSM's status events find the deployment by it, even if the save below fails.
        self._store.index_command(command_id, deployment.deployment_id, int((now + timedelta(days=7)).timestamp()))
        return self._store.save_deployment(transitions.command_sent(deployment, command_id, cause, now))


def _rollout_of(deployment: Deployment) -> RolloutSpec:
    """The spec's rollout, with a wave's MaxErrors: what is left of the deployment's error budget."""
    return attempt_rollout(deployment.spec.rollout, deployment.rollout, deployment.attempts)
