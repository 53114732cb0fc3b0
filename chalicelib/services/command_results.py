"""Reading where a command that is over leaves a deployment: SSM's counts when they are enough, else each instance's
invocation, and the fuller output of the first few failed instances.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.domain import transitions
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.progress import (
    CommandState,
    Invocation,
    Phase,
    Progress,
    assess,
    success_from_counts,
)
from chalicelib.domain.rollout import wave_max_errors
from chalicelib.services.places import Placed

# Failed instances whose full output (GetCommandInvocation) is fetched per refresh; the rest keep SSM's short cut.
FULL_OUTPUT_FOR = 5


class CommandResults:
    def __init__(self, ssm: Placed[SsmGateway], instances: Placed[InstanceDirectory]) -> None:
        self._ssm = ssm
        self._instances = instances

    def read(self, deployment: Deployment, command_id: str) -> Deployment:
        """The results of the last attempt's command, which is over (not saved: the next transition keeps them)."""
        attempt = deployment.attempts[-1]
        state = self._ssm.of(deployment).command_state(command_id) or CommandState(status="Cancelled")
        progress = self.final_progress(deployment, command_id, attempt.expected_instances, state)
        return transitions.results_read(deployment, progress.instances, progress.tally)

    def final_progress(self, deployment: Deployment, command_id: str, expected: list[str], state: CommandState
                       ) -> Progress:
        """Where a command that is over leaves the deployment."""
        if deployment.revision.digest is not None:  # otherwise an instance's output must say what it pulled
            counted = success_from_counts(expected, state)
            if counted is not None:
                return counted
        invocations = self._final_invocations(deployment, command_id, state)
        max_errors = wave_max_errors(deployment.spec.rollout, deployment.rollout, deployment.attempts)
        expected = self._expected_now(deployment, expected, invocations, state)
        progress = assess(expected, invocations, state.status, max_errors)
        if progress.phase == Phase.FAILED:
            invocations = self._with_full_output(deployment, command_id, invocations)
            progress = assess(expected, invocations, state.status, max_errors)
        return progress

    def _final_invocations(self, deployment: Deployment, command_id: str, state: CommandState) -> list[Invocation]:
        """Every instance's result, read once the command is over. When SSM's counts say every instance succeeded and
        the digest is already pinned, statuses are all berth needs: a page without exit codes and output is cheaper to
        read. Anything but Success in it, and the pages are read again in full."""
        clean = (state.error_count == 0 and state.delivery_timed_out_count == 0
                 and state.completed_count == state.target_count and deployment.revision.digest is not None)
        if clean:
            invocations = self._ssm.of(deployment).list_invocations(command_id, details=False)
            if all(inv.status == "Success" for inv in invocations):
                return invocations
        return self._ssm.of(deployment).list_invocations(command_id, details=True)

    def _expected_now(self, deployment: Deployment, expected: list[str], invocations: list[Invocation],
                      state: CommandState) -> list[str]:
        """Once the command is over, an expected instance without an invocation counts as never having run it, unless
        it is not running (stopped since, or never started): then it was not part of this deployment."""
        if not state.over:
            return expected
        missing = sorted(set(expected) - {inv.instance_id for inv in invocations})
        if not missing:
            return expected
        running = self._instances.of(deployment).running_among(missing)
        return [instance for instance in expected if instance not in missing or instance in running]

    def _with_full_output(self, deployment: Deployment, command_id: str, invocations: list[Invocation]
                          ) -> list[Invocation]:
        """Swap SSM's 2,500-character cut for the fuller output of the first few failed instances."""
        failed = sorted((inv for inv in invocations if inv.status != "Success" or inv.response_code not in (0, None)),
                        key=lambda inv: inv.instance_id)[:FULL_OUTPUT_FOR]
        ssm = self._ssm.of(deployment)
        fuller = {inv.instance_id: ssm.full_output(command_id, inv.instance_id) for inv in failed}
        return [replace(inv, output=fuller[inv.instance_id]) if inv.instance_id in fuller else inv
                for inv in invocations]
