"""Run Command with controllable outcomes: SendCommand, ListCommands, ListCommandInvocations,
GetCommandInvocation and CancelCommand, replacing or adding to moto's always-Success versions.

SendCommand still goes through moto's backend so the command exists for moto's other operations, but
the instances it reaches are resolved here (``ssm_fleet``) because moto's own resolution adds every EC2
instance whenever Targets is empty and ignores instance state. Like AWS, the SendCommand answer says
Pending with zero counts; ListCommands shows the aggregated status.
"""

from __future__ import annotations

import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult

from . import ssm_documents, ssm_fleet, ssm_instances
from .errors import AwsError, validation_error
from .paging import page
from .params import request_params
from .shapes import shaped
from .ssm_runs import PLUGIN_NAME, STDERR_LIMIT, STDOUT_LIMIT, CommandRun, Invocation, runs_of
from .state import LOCK, outcome_for

SERVICE = "ssm"


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _run(self: Any, command_id: str) -> CommandRun:
    run = runs_of(self.ssm_backend).get(command_id)
    if run is None:
        raise AwsError("InvalidCommandId", "Invalid command id.")
    return run


def send_command(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "SendCommand")
    explicit: list[str] = list(dict.fromkeys(params.get("InstanceIds", [])))
    targets: list[dict[str, Any]] = params.get("Targets", [])
    if bool(explicit) == bool(targets):
        raise AwsError("InvalidParameters", "Specify either InstanceIds or Targets, not both or neither.")
    declared = ssm_documents.declared_parameters(self.ssm_backend, params["DocumentName"])
    ssm_documents.check_parameters(declared, params.get("Parameters") or {})
    account, region = self.current_account, self.region
    if explicit:
        platforms = ssm_documents.supported_platforms(params["DocumentName"])
        ssm_fleet.check_explicit_ids(account, region, explicit, platforms)
        candidates = explicit
    else:
        candidates = ssm_fleet.resolve_targets(account, region, targets)
    command = self.ssm_backend.send_command(
        comment=params.get("Comment", ""),
        document_name=params.get("DocumentName"),
        timeout_seconds=params.get("TimeoutSeconds"),
        instance_ids=list(candidates),
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
    hook_view = {
        "CommandId": command.command_id,
        "DocumentName": command.document_name,
        "Parameters": command.parameters,
        "Comment": command.comment,
        "TimeoutSeconds": command.timeout_seconds,
        "InstanceIds": explicit,
        "Targets": targets,
    }
    run = CommandRun(
        command_id=command.command_id,
        document_name=command.document_name or "",
        comment=command.comment,
        requested=command.requested_date_time,
        by_targets=bool(targets),
        max_errors=command.max_errors,
        max_concurrency=command.max_concurrency,
        notification_config=params.get("NotificationConfig"),
    )
    for instance_id in candidates:
        outcome = outcome_for(instance_id, hook_view)
        if outcome.skip:
            if explicit:
                self.ssm_backend._commands.remove(command)
                raise AwsError("InvalidInstanceId", f"Instance {instance_id} is not a managed node.")
            continue
        run.invocations[instance_id] = Invocation(instance_id, outcome)
    run.advance()
    with LOCK:
        runs_of(self.ssm_backend)[command.command_id] = run
    body = _without_moto_placeholders(command.response_object(), run)
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


def _passes(filters: list[dict[str, str]], run: CommandRun, status: str, done: bool) -> bool:
    for item in filters:
        key, value = item["key"], item["value"]
        if key == "Status" and status != value:
            return False
        if key == "DocumentName" and run.document_name != value:
            return False
        if key == "ExecutionStage" and value != ("Complete" if done else "Executing"):
            return False
        if key in ("InvokedAfter", "InvokedBefore"):
            try:
                moment = datetime.datetime.fromisoformat(value)
            except ValueError:
                raise validation_error([f"Value {value!r} at {key!r} is not an ISO 8601 date and time."]) from None
            requested = run.requested.replace(tzinfo=run.requested.tzinfo or datetime.UTC)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            if (key == "InvokedAfter" and requested < moment) or (key == "InvokedBefore" and requested > moment):
                return False
    return True


def _selected_runs(self: Any, params: dict[str, Any]) -> list[CommandRun]:
    if params.get("CommandId"):
        return [_run(self, params["CommandId"])]
    return list(reversed(runs_of(self.ssm_backend).values()))


def list_commands(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "ListCommands")
    with LOCK:
        runs = _selected_runs(self, params)
        instance_id = params.get("InstanceId")
        if instance_id:
            runs = [run for run in runs if instance_id in run.invocations]
        runs = [
            run
            for run in runs
            if _passes(params.get("Filters", []), run, run.status()[0], run.status()[0] != "InProgress")
        ]
        chosen, token = page(runs, "ListCommands", params.get("MaxResults", 50), params.get("NextToken"))
        result: dict[str, Any] = {"Commands": [_command_view(self, run) for run in chosen]}
    if token:
        result["NextToken"] = token
    return shaped(SERVICE, "ListCommands", result)


def _invocation_view(self: Any, run: CommandRun, invocation: Invocation, details: bool) -> dict[str, Any]:
    status, status_details = invocation.status()
    plugins: list[dict[str, Any]] = []
    if details:
        plugin: dict[str, Any] = {
            "Name": PLUGIN_NAME,
            "Status": status,
            "StatusDetails": status_details,
            "ResponseCode": invocation.response_code(),
            "Output": invocation.plugin_output(),
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": self.region,
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
        }
        if invocation.sent:
            plugin["ResponseStartDateTime"] = run.requested
        if invocation.done:
            plugin["ResponseFinishDateTime"] = run.requested
        plugins.append(plugin)
    return {
        "CommandId": run.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": "",
        "Comment": run.comment,
        "DocumentName": run.document_name,
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": run.requested,
        "Status": status,
        "StatusDetails": status_details,
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": plugins,
        "ServiceRole": "",
        **({"NotificationConfig": run.notification_config} if run.notification_config else {}),
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
    }


def list_command_invocations(self: Any) -> ActionResult:
    """Lists invocations; each one returned counts as one read of it (see ``InstanceOutcome``)."""
    params = request_params(self, SERVICE, "ListCommandInvocations")
    instance_id = params.get("InstanceId")
    with LOCK:
        pairs = [
            (run, invocation)
            for run in _selected_runs(self, params)
            for invocation in run.invocations.values()
            if (not instance_id or invocation.instance_id == instance_id) and invocation.visible()
        ]
        pairs = [
            (run, invocation)
            for run, invocation in pairs
            if _passes(params.get("Filters", []), run, invocation.status()[0], invocation.done)
        ]
        chosen, token = page(pairs, "ListCommandInvocations", params.get("MaxResults", 50), params.get("NextToken"))
        views = [_invocation_view(self, run, inv, bool(params.get("Details"))) for run, inv in chosen]
        for chosen_run, invocation in chosen:
            chosen_run.read(invocation)
    result: dict[str, Any] = {"CommandInvocations": views}
    if token:
        result["NextToken"] = token
    return shaped(SERVICE, "ListCommandInvocations", result)


def get_command_invocation(self: Any) -> ActionResult:
    """One invocation's result (this read counts toward ``polls_before_done``)."""
    params = request_params(self, SERVICE, "GetCommandInvocation")
    with LOCK:
        run = _run(self, params["CommandId"])
        invocation = run.invocations.get(params["InstanceId"])
        if invocation is None or not invocation.visible():
            raise AwsError("InvocationDoesNotExist", "An error occurred (InvocationDoesNotExist).")
        if params.get("PluginName") not in (None, PLUGIN_NAME):
            raise AwsError("InvalidPluginName", "The plugin name is not valid.")
        status, details = invocation.status()
        result = {
            "CommandId": run.command_id,
            "InstanceId": invocation.instance_id,
            "Comment": run.comment,
            "DocumentName": run.document_name,
            "DocumentVersion": "$DEFAULT",
            "PluginName": PLUGIN_NAME,
            "ResponseCode": invocation.response_code(),
            "ExecutionStartDateTime": _iso(run.requested) if invocation.sent else "",
            "ExecutionElapsedTime": "PT0S" if invocation.done else "",
            "ExecutionEndDateTime": _iso(run.requested) if invocation.done else "",
            "Status": status,
            "StatusDetails": details,
            "StandardOutputContent": invocation.stdout()[:STDOUT_LIMIT],
            "StandardOutputUrl": "",
            "StandardErrorContent": invocation.stderr()[:STDERR_LIMIT],
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }
        run.read(invocation)
    return shaped(SERVICE, "GetCommandInvocation", result)


def cancel_command(self: Any) -> ActionResult:
    """Invocations not yet final become Cancelled; finished ones keep their result."""
    params = request_params(self, SERVICE, "CancelCommand")
    wanted = params.get("InstanceIds") or None
    with LOCK:
        run = _run(self, params["CommandId"])
        run.cancel(wanted)
    return EmptyResult()


METHODS: dict[str, Any] = {
    "send_command": send_command,
    "list_commands": list_commands,
    "list_command_invocations": list_command_invocations,
    "get_command_invocation": get_command_invocation,
    "cancel_command": cancel_command,
    "describe_instance_information": ssm_instances.describe_instance_information,
}
