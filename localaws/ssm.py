"""Run Command with controllable outcomes: SendCommand, ListCommands and CancelCommand here, the
invocation reads in ``ssm_invocations``, replacing or adding to moto's always-Success versions.

SendCommand still goes through moto's backend so the command exists for moto's other operations, but
the instances it reaches are resolved here (``ssm_fleet``) because moto's own resolution adds every EC2
instance whenever Targets is empty and ignores instance state. Like AWS, the SendCommand answer says
Pending with zero counts; ListCommands shows the aggregated status.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from . import docker_answers, ssm_documents, ssm_fleet, ssm_instances, ssm_invocations
from .errors import AwsError
from .paging import page
from .params import request_params
from .shapes import shaped
from .ssm_invocations import find_run, passes_filters, selected_runs
from .ssm_runs import CommandRun, Invocation, runs_of
from .state import LOCK, outcome_for

SERVICE = "ssm"


def _candidates(self: Any, params: dict[str, Any]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Instances the command would reach, the explicit InstanceIds and the Targets, after AWS's checks."""
    explicit: list[str] = list(dict.fromkeys(params.get("InstanceIds", [])))
    targets: list[dict[str, Any]] = params.get("Targets", [])
    if bool(explicit) == bool(targets):
        raise AwsError("InvalidParameters", "Specify either InstanceIds or Targets, not both or neither.")
    declared = ssm_documents.declared_parameters(self.ssm_backend, params["DocumentName"])
    ssm_documents.check_parameters(declared, params.get("Parameters") or {})
    account, region = self.current_account, self.region
    if not explicit:
        return ssm_fleet.resolve_targets(account, region, targets), explicit, targets
    platforms = ssm_documents.supported_platforms(params["DocumentName"])
    ssm_fleet.check_explicit_ids(account, region, explicit, platforms)
    return explicit, explicit, targets


def _moto_command(self: Any, params: dict[str, Any], explicit: list[str], targets: list[dict[str, Any]]) -> Any:
    """moto's Command, so moto's own operations see it; its instance resolution is not used."""
    command = self.ssm_backend.send_command(
        comment=params.get("Comment", ""),
        document_name=params.get("DocumentName"),
        timeout_seconds=params.get("TimeoutSeconds"),
        instance_ids=[],
        max_concurrency=params.get("MaxConcurrency", "50"),
        max_errors=params.get("MaxErrors", "0"),
        notification_config=params.get("NotificationConfig"),
        output_s3_bucket_name=params.get("OutputS3BucketName", ""),
        output_s3_key_prefix=params.get("OutputS3KeyPrefix", ""),
        output_s3_region=params.get("OutputS3Region", ""),
        parameters=params.get("Parameters", {}),
        service_role_arn=params.get("ServiceRoleArn", ""),
        targets=[],
    )
    command.instance_ids, command.targets, command.invocations = explicit, targets, []
    return command


def _start_run(command: Any, params: dict[str, Any], candidates: list[str], explicit: list[str]) -> CommandRun:
    """Fix each candidate's outcome (hook first) and send as the rate controls allow."""
    hook_view = {
        "CommandId": command.command_id,
        "DocumentName": command.document_name,
        "Parameters": command.parameters,
        "Comment": command.comment,
        "TimeoutSeconds": command.timeout_seconds,
        "InstanceIds": explicit,
        "Targets": command.targets,
    }
    run = CommandRun(
        command_id=command.command_id,
        document_name=command.document_name or "",
        comment=command.comment,
        requested=command.requested_date_time,
        by_targets=not explicit,
        max_errors=command.max_errors,
        max_concurrency=command.max_concurrency,
        notification_config=params.get("NotificationConfig"),
        output_s3_bucket=params.get("OutputS3BucketName", ""),
        output_s3_prefix=params.get("OutputS3KeyPrefix", ""),
    )
    for instance_id in candidates:
        outcome = outcome_for(instance_id, hook_view)
        if not outcome.skip:  # an unmanaged instance runs nothing, whatever its Docker would answer
            outcome = docker_answers.outcome(instance_id, hook_view) or outcome
        if outcome.skip and explicit:
            raise AwsError("InvalidInstanceId", f"Instance {instance_id} is not a managed node.")
        if not outcome.skip:
            run.invocations[instance_id] = Invocation(instance_id, outcome)
    run.advance()
    return run


def send_command(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "SendCommand")
    candidates, explicit, targets = _candidates(self, params)
    command = _moto_command(self, params, explicit, targets)
    try:
        run = _start_run(command, params, candidates, explicit)
    except AwsError:
        self.ssm_backend._commands.remove(command)
        raise
    with LOCK:
        runs_of(self.ssm_backend)[command.command_id] = run
    body = _without_moto_placeholders(command.response_object(), run)
    # AWS answers SendCommand before anything ran: Pending, all counts zero.
    body.update(Status="Pending", StatusDetails="Pending", TargetCount=0, CompletedCount=0, ErrorCount=0)
    body["DeliveryTimedOutCount"] = 0
    return shaped(SERVICE, "SendCommand", {"Command": body})


def _without_moto_placeholders(body: dict[str, Any], run: CommandRun) -> dict[str, Any]:
    """moto invents a NotificationConfig (``NotificationArn: "string"``) when none was sent; AWS omits it."""
    body.pop("NotificationConfig", None)
    if run.notification_config:
        body["NotificationConfig"] = run.notification_config
    return body


def _command_view(self: Any, run: CommandRun) -> dict[str, Any]:
    body = _without_moto_placeholders(self.ssm_backend.get_command_by_id(run.command_id).response_object(), run)
    status, details = run.status()
    body.update(run.counts(), Status=status, StatusDetails=details)
    return body


def list_commands(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "ListCommands")
    with LOCK:
        runs = selected_runs(self, params)
        instance_id = params.get("InstanceId")
        if instance_id:
            runs = [run for run in runs if instance_id in run.invocations]
        runs = [
            run
            for run in runs
            if passes_filters(params.get("Filters", []), run, run.status()[0], run.status()[0] != "InProgress")
        ]
        chosen, token = page(runs, "ListCommands", params.get("MaxResults", 50), params.get("NextToken"))
        result: dict[str, Any] = {"Commands": [_command_view(self, run) for run in chosen]}
        # A look at a command is a read of each invocation it had in flight, as a page of them would be; ones sent
        # because of this look (the window freed) are not read by it.
        looked_at = [(run, [i for i in run.invocations.values() if i.sent]) for run in chosen]
        for run, in_flight in looked_at:
            for invocation in in_flight:
                run.read(invocation)
    if token:
        result["NextToken"] = token
    return shaped(SERVICE, "ListCommands", result)


def cancel_command(self: Any) -> ActionResult:
    """Invocations not yet final become Cancelled; finished ones keep their result."""
    params = request_params(self, SERVICE, "CancelCommand")
    wanted = params.get("InstanceIds") or None
    with LOCK:
        run = find_run(self, params["CommandId"])
        run.cancel(wanted)
    return EmptyResult()


METHODS: dict[str, Any] = {
    "send_command": send_command,
    "list_commands": list_commands,
    "list_command_invocations": ssm_invocations.list_command_invocations,
    "get_command_invocation": ssm_invocations.get_command_invocation,
    "cancel_command": cancel_command,
    "describe_instance_information": ssm_instances.describe_instance_information,
}
