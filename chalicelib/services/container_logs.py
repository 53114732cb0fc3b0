"""`berth logs`: a target's container logs from its instances over SSM, in two calls and no wait.

The first call sends `docker logs` to the named instance or every Online instance of the target (at most 50) and
answers with the command's id; the second reads each instance's output. Nothing waits inside the Lambda: the CLI
polls. The second call answers only for a logs command of that very target (its comment names it), so a caller allowed
the logs routes cannot read another command's output through them, an exec's included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.container_commands import logs_commands
from chalicelib.domain.errors import CommandNotFound, TargetNotFound
from chalicelib.domain.instance_output import InvocationOutput, choose_instances, merge_log_lines
from chalicelib.domain.spec import TargetSpec
from chalicelib.domain.target import TargetRecord
from chalicelib.services.places import Located, placed_ssm

logger = logging.getLogger(__name__)
# `docker logs` of 10,000 lines takes seconds; an instance that cannot answer in two minutes is not waited for.
LOGS_EXECUTION_TIMEOUT_SECONDS = 120


def logs_comment(target: str) -> str:
    return f"berth logs {target}"


@dataclass(frozen=True)
class CommandStarted:
    command_id: str
    target: str
    instance_ids: list[str]
    instances_left_out: int


@dataclass(frozen=True)
class LogsOutput:
    command_id: str
    target: str
    instances: list[InvocationOutput]
    lines: list[str]

    @property
    def done(self) -> bool:
        return all(instance.done for instance in self.instances)


class ContainerLogs:
    def __init__(self, store: DeploymentStore, ssm: SsmGateway, output_bucket: str | None,
                 located: Located | None = None) -> None:
        self._store = store
        self._ssm = placed_ssm(ssm, located)
        self._output_bucket = output_bucket

    def start(self, name: str, instance: str | None, since: str, tail: int, caller: str) -> CommandStarted:
        record = target_record(self._store, name)
        ssm = self._ssm.of_spec(record.spec)
        choice = choose_instances(name, ssm.ping_statuses(record.spec.instances), instance, every=True)
        command_id = ssm.send_to_instances(
            choice.instance_ids, logs_commands(record.spec.container.name, since, tail),
            LOGS_EXECUTION_TIMEOUT_SECONDS, logs_comment(name), output_bucket(self._output_bucket, record.spec),
            "berth-logs")
        logger.info("container logs requested", extra={"target": name, "caller": caller, "command_id": command_id,
                                                       "instances": choice.instance_ids, "since": since, "tail": tail})
        return CommandStarted(command_id, name, choice.instance_ids, choice.left_out)

    def read(self, name: str, command_id: str) -> LogsOutput:
        ssm = self._ssm.of_spec(target_record(self._store, name).spec)
        sent = ssm.sent_command(command_id)
        if sent is None or sent.comment != logs_comment(name):
            raise CommandNotFound(f"no logs command {command_id} for target {name!r}")
        outputs = [ssm.invocation_output(command_id, instance) for instance in sent.instance_ids]
        return LogsOutput(command_id, name, outputs, merge_log_lines(outputs))


def output_bucket(bucket: str | None, spec: TargetSpec) -> str | None:
    """berth's output bucket is in berth's own account: SSM in a target's own account does not write to it."""
    return bucket if spec.location is None else None


def target_record(store: DeploymentStore, name: str) -> TargetRecord:
    record = store.get_target(name)
    if record is None:
        raise TargetNotFound(f"target {name!r} is not registered: register it with PUT /targets/{name}")
    return record
