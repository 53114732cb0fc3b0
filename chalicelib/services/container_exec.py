"""`berth exec`: a one-off container of the target's current image on one instance or all, audited.

The run is sent as one SSM command (domain/container_commands.py builds it) and recorded with the caller's ARN under
its command id (EXEC#<command id>, store/exec_runs.py) before the caller has its answer; a log line says the same,
without the env the container gets. The second call reads each instance's output and exit code; nothing waits inside
the Lambda.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.container_commands import ExecRecord, OneOffRun, exec_commands
from chalicelib.domain.errors import CommandNotFound, NoCurrentRevision
from chalicelib.domain.instance_output import InvocationOutput, choose_instances, overall_exit_code
from chalicelib.services.container_logs import output_bucket, target_record
from chalicelib.services.places import Located, placed_ssm

logger = logging.getLogger(__name__)
# SSM's executionTimeout is the run's own timeout plus the time to stop and remove an overstaying container.
CLEANUP_SECONDS = 30


@dataclass(frozen=True)
class ExecOutput:
    record: ExecRecord
    instances: list[InvocationOutput]

    @property
    def done(self) -> bool:
        return all(instance.done for instance in self.instances)

    @property
    def exit_code(self) -> int | None:
        return overall_exit_code(self.instances)


class ContainerExec:
    def __init__(self, store: DeploymentStore, ssm: SsmGateway, scripts: dict[str, str], new_run_id: Callable[[], str],
                 clock: Callable[[], datetime], output_bucket: str | None, located: Located | None = None) -> None:
        self._store = store
        self._ssm = placed_ssm(ssm, located)
        self._scripts = scripts
        self._new_run_id = new_run_id
        self._clock = clock
        self._output_bucket = output_bucket

    def start(self, name: str, command: list[str], instance: str | None, every: bool, timeout_seconds: int,
              caller: str) -> ExecRecord:
        record = target_record(self._store, name)
        if record.current_revision is None:
            raise NoCurrentRevision(f"target {name!r} has no current revision: deploy it once, then run commands "
                                    "in its image")
        ssm = self._ssm.of_spec(record.spec)
        choice = choose_instances(name, ssm.ping_statuses(record.spec.instances), instance, every)
        run = OneOffRun(self._new_run_id(), record.current_revision.pinned, record.spec.container, tuple(command),
                        timeout_seconds)
        command_id = ssm.send_to_instances(choice.instance_ids, exec_commands(run, self._scripts),
                                           timeout_seconds + CLEANUP_SECONDS, exec_comment(name),
                                           output_bucket(self._output_bucket, record.spec), "berth-exec")
        started = ExecRecord(command_id=command_id, target=name, caller=caller, command=run.command, image=run.image,
                             instance_ids=tuple(choice.instance_ids), run_id=run.run_id,
                             timeout_seconds=timeout_seconds, started_at=self._clock().isoformat())
        logger.info("one-off run started", extra={"target": name, "caller": caller, "command_id": command_id,
                                                  "command": list(run.command), "image": run.image,
                                                  "instances": choice.instance_ids})
        self._store.record_exec(started)
        return started

    def read(self, name: str, command_id: str) -> ExecOutput:
        ssm = self._ssm.of_spec(target_record(self._store, name).spec)
        record = self._store.get_exec(command_id)
        if record is None or record.target != name:
            raise CommandNotFound(f"no exec command {command_id} for target {name!r}")
        return ExecOutput(record, [ssm.invocation_output(command_id, i) for i in record.instance_ids])


def exec_comment(target: str) -> str:
    return f"berth exec {target}"
