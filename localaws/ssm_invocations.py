"""ListCommandInvocations and GetCommandInvocation over the ``CommandRun`` state, plus the command
lookup and filters that ListCommands shares. Every invocation these calls return counts as one read
of it, which is how ``polls_before_done`` and the rate controls advance.
"""

from __future__ import annotations

import datetime
from typing import Any

from moto.core.responses import ActionResult

from .errors import AwsError, validation_error
from .paging import page
from .params import request_params
from .shapes import shaped
from .ssm_runs import PLUGIN_NAME, STDERR_LIMIT, STDOUT_LIMIT, CommandRun, Invocation, runs_of
from .state import LOCK

SERVICE = "ssm"


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def find_run(self: Any, command_id: str) -> CommandRun:
    """The run of a command sent through localaws; anything else is ``InvalidCommandId``."""
    run = runs_of(self.ssm_backend).get(command_id)
    if run is None:
        raise AwsError("InvalidCommandId", "Invalid command id.")
    return run


def passes_filters(filters: list[dict[str, str]], run: CommandRun, status: str, done: bool) -> bool:
    """CommandFilter semantics shared by ListCommands (command status) and ListCommandInvocations."""
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


def selected_runs(self: Any, params: dict[str, Any]) -> list[CommandRun]:
    """The request's command, or all of them newest first (the order the list calls use)."""
    if params.get("CommandId"):
        return [find_run(self, params["CommandId"])]
    return list(reversed(runs_of(self.ssm_backend).values()))


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
            for run in selected_runs(self, params)
            for invocation in run.invocations.values()
            if (not instance_id or invocation.instance_id == instance_id) and invocation.visible()
        ]
        pairs = [
            (run, invocation)
            for run, invocation in pairs
            if passes_filters(params.get("Filters", []), run, invocation.status()[0], invocation.done)
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
        run = find_run(self, params["CommandId"])
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
            "StandardOutputUrl": run.stdout_url(self.region, invocation.instance_id),
            "StandardErrorContent": invocation.stderr()[:STDERR_LIMIT],
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }
        run.read(invocation)
    return shaped(SERVICE, "GetCommandInvocation", result)
