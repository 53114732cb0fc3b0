"""SSM Run Command in memory, behind the SsmGateway port.

Commands live in localaws's own run model (localaws.ssm_runs.CommandRun): the model the moto-backed gateway is
tested against, so rate control (MaxConcurrency, MaxErrors), `polls_before_done` and each read's effect are the same
here; what the fake leaves out is botocore, HTTP and moto. Outcomes are localaws's InstanceOutcome, set per instance
or as the default, before the command is sent. A read is what it is in localaws: `command_state` reads every
invocation in flight, `list_invocations` every invocation it returns, `full_output` the one it returns.

`fail_next(operation, error)` makes the next call of a gateway method raise `error` (an AwsCallFailed, or a
CallUnanswered for a send whose answer was lost: then the command is still sent).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.ssm import DOCUMENT, SsmGateway
from chalicelib.domain.errors import AwsCallFailed, CallUnanswered
from chalicelib.domain.progress import CommandState, Invocation
from chalicelib.domain.spec import InstancesSpec, RolloutSpec
from localaws.outcomes import InstanceOutcome
from localaws.ssm_runs import STDERR_LIMIT, STDOUT_LIMIT, CommandRun
from localaws.ssm_runs import Invocation as Run
from tests.fakes.fleet import Fleet

PAGE = 50


class FakeSsmGateway(SsmGateway):
    def __init__(self, fleet: Fleet, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(ssm_client=None, ssm_client_for_sending=lambda: None)
        self.fleet = fleet
        self._clock = clock
        self.runs: dict[str, CommandRun] = {}
        self.sent: list[dict[str, object]] = []       # what each SendCommand carried, in order
        self._outcomes: dict[str, InstanceOutcome] = {}
        self._default = InstanceOutcome()
        self._failures: dict[str, list[AwsCallFailed]] = {}

    # what a test sets up --------------------------------------------------------------------------------------
    def set_outcome(self, instance_id: str, outcome: InstanceOutcome) -> None:
        self._outcomes[instance_id] = outcome

    def set_default_outcome(self, outcome: InstanceOutcome) -> None:
        self._default = outcome

    def fail_next(self, operation: str, error: AwsCallFailed) -> None:
        self._failures.setdefault(operation, []).append(error)

    def _fail(self, operation: str) -> AwsCallFailed | None:
        queued = self._failures.get(operation)
        return queued.pop(0) if queued else None

    def _outcome(self, instance_id: str) -> InstanceOutcome:
        return self._outcomes.get(instance_id, self._default)

    # the port -------------------------------------------------------------------------------------------------
    def send_deploy_command(self, instances: InstancesSpec, commands: list[str], rollout: RolloutSpec,
                            comment: str) -> str:
        failure = self._fail("send_deploy_command")
        if failure is not None and not isinstance(failure, CallUnanswered):
            raise failure
        managed = [i for i in self.fleet.running() if not self._outcome(i).skip]
        if instances.ids is not None:
            explicit = list(dict.fromkeys(instances.ids))
            invalid = [i for i in explicit if i not in managed]
            if invalid:
                raise AwsCallFailed(f"SSM SendCommand failed with InvalidInstanceId: Instances {invalid} not in a "
                                    "valid state")
            candidates = explicit
        else:
            candidates = self.fleet.matching(instances.tags or {})
        command_id = f"{len(self.runs) + 1:08x}-0000-4000-8000-000000000000"
        run = CommandRun(command_id=command_id, document_name=DOCUMENT, comment=comment[:100],
                         requested=self._clock(), by_targets=instances.ids is None, max_errors=rollout.max_errors,
                         max_concurrency=rollout.max_concurrency)
        for instance_id in candidates:
            if not self._outcome(instance_id).skip:
                run.invocations[instance_id] = Run(instance_id, self._outcome(instance_id))
        run.advance()
        self.runs[command_id] = run
        self.sent.append({"instances": instances, "commands": list(commands), "rollout": rollout, "comment": comment})
        if failure is not None:
            raise failure
        return command_id

    def find_commands(self, matches: Callable[[str], bool], sent_after: datetime) -> list[tuple[str, str]]:
        self._raise_if_failing("find_commands")
        since = sent_after - timedelta(minutes=5)
        found = [run for run in reversed(self.runs.values()) if run.requested >= since and matches(run.comment)]
        for run in found:
            self._read_in_flight(run)
        return [(run.comment, run.command_id) for run in found]

    def command_state(self, command_id: str) -> CommandState | None:
        self._raise_if_failing("command_state")
        run = self._run(command_id, "SSM ListCommands")
        status, details = run.status()
        counts = run.counts()
        self._read_in_flight(run)
        return CommandState(status=status, status_details=details, target_count=counts["TargetCount"],
                            completed_count=counts["CompletedCount"], error_count=counts["ErrorCount"],
                            delivery_timed_out_count=counts["DeliveryTimedOutCount"])

    def list_invocations(self, command_id: str, details: bool = True) -> list[Invocation]:
        self._raise_if_failing("list_invocations")
        run = self._run(command_id, "SSM ListCommandInvocations")
        visible = [invocation for invocation in run.invocations.values() if invocation.visible()]
        found: list[Invocation] = []
        for start in range(0, len(visible), PAGE):
            page = visible[start:start + PAGE]
            found += [Invocation(instance_id=i.instance_id, status=i.status()[0],
                                 response_code=i.response_code() if details else None,
                                 output=i.plugin_output() if details else "") for i in page]
            for invocation in page:
                run.read(invocation)
        return found

    def full_output(self, command_id: str, instance_id: str) -> str:
        self._raise_if_failing("full_output")
        run = self._run(command_id, "SSM GetCommandInvocation")
        invocation = run.invocations.get(instance_id)
        if invocation is None or not invocation.visible():
            raise AwsCallFailed("SSM GetCommandInvocation failed with InvocationDoesNotExist: "
                                "An error occurred (InvocationDoesNotExist).")
        stdout, stderr = invocation.stdout()[:STDOUT_LIMIT], invocation.stderr()[:STDERR_LIMIT]
        run.read(invocation)
        return stdout + (f"\n[stderr]\n{stderr}" if stderr else "")

    def cancel(self, command_id: str) -> None:
        self._raise_if_failing("cancel")
        self._run(command_id, "SSM CancelCommand").cancel(None)

    def ping_statuses(self, instances: InstancesSpec) -> dict[str, str]:
        self._raise_if_failing("ping_statuses")
        managed = [i for i in self.fleet.running() if not self._outcome(i).skip]
        wanted = set(instances.ids) if instances.ids is not None else set(self.fleet.matching(instances.tags or {}))
        return {instance_id: "Online" for instance_id in managed if instance_id in wanted}

    def _raise_if_failing(self, operation: str) -> None:
        failure = self._fail(operation)
        if failure is not None:
            raise failure

    def _run(self, command_id: str, operation: str) -> CommandRun:
        run = self.runs.get(command_id)
        if run is None:
            raise AwsCallFailed(f"{operation} failed with InvalidCommandId: Invalid command id.")
        return run

    @staticmethod
    def _read_in_flight(run: CommandRun) -> None:
        for invocation in [i for i in run.invocations.values() if i.sent]:
            run.read(invocation)
