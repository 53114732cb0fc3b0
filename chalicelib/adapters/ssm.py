"""SSM Run Command: send one deploy command per attempt, read back per-instance state page by page.

SendCommand has no idempotency token, so it goes through a client that makes one attempt (wiring), and an answer
that never came is CallUnanswered, not a failure: the command may be running. It is then looked for by its Comment,
which berth makes unique per deployment, attempt and try (chalicelib.domain.deployment.command_comment).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.errors import aws_call, returning
from chalicelib.domain.instance_output import InvocationOutput, SentCommand
from chalicelib.domain.progress import CommandState, Invocation
from chalicelib.domain.spec import InstancesSpec, RolloutSpec

DOCUMENT = "AWS-RunShellScript"
# SSM's own delivery window for instances that are offline when the command is sent.
DELIVERY_TIMEOUT_SECONDS = 600
# Operators' commands go to instances that were Online a moment before: one that does not take it soon is not waited
# for (30 s is SSM's least).
OPERATOR_DELIVERY_TIMEOUT_SECONDS = 60


class SsmGateway:
    def __init__(self, ssm_client: Any, ssm_client_for_sending: Callable[[], Any]) -> None:
        """`ssm_client_for_sending` gives the client SendCommand goes through: one that makes a single attempt."""
        self._ssm = ssm_client
        self._sender = ssm_client_for_sending

    def send_deploy_command(self, instances: InstancesSpec, commands: list[str], rollout: RolloutSpec,
                            comment: str) -> str:
        kwargs: dict[str, Any] = {
            "DocumentName": DOCUMENT,
            "Parameters": {"commands": commands, "executionTimeout": [str(rollout.timeout_seconds)]},
            "MaxConcurrency": rollout.max_concurrency,
            "MaxErrors": rollout.max_errors,
            "TimeoutSeconds": DELIVERY_TIMEOUT_SECONDS,
            "Comment": comment[:100],
        }
        if instances.ids is not None:
            kwargs["InstanceIds"] = list(instances.ids)
        else:
            kwargs["Targets"] = [{"Key": f"tag:{key}", "Values": [value]}
                                 for key, value in sorted((instances.tags or {}).items())]
        sent = aws_call("SSM SendCommand", lambda **params: self._sender().send_command(**params), may_have_run=True,
                        **kwargs)
        return str(sent["Command"]["CommandId"])

    def send_to_instances(self, instance_ids: list[str], commands: list[str], execution_timeout: int,
                          comment: str, output_bucket: str | None = None, output_prefix: str = "berth") -> str:
        """An operator's command (logs, exec) to at most 50 instances by id, all at once; with `output_bucket`, SSM
        also writes each instance's whole output to S3 under `output_prefix`."""
        kwargs: dict[str, Any] = {
            "DocumentName": DOCUMENT,
            "InstanceIds": instance_ids,
            "Parameters": {"commands": commands, "executionTimeout": [str(execution_timeout)]},
            "MaxConcurrency": "100%",
            "MaxErrors": "100%",
            "TimeoutSeconds": OPERATOR_DELIVERY_TIMEOUT_SECONDS,
            "Comment": comment[:100],
        }
        if output_bucket:
            kwargs |= {"OutputS3BucketName": output_bucket, "OutputS3KeyPrefix": output_prefix}
        sent = aws_call("SSM SendCommand", lambda **params: self._sender().send_command(**params), may_have_run=True,
                        **kwargs)
        return str(sent["Command"]["CommandId"])

    def sent_command(self, command_id: str) -> SentCommand | None:
        """The command's comment and instance ids; None when SSM knows no such command."""
        listed = aws_call("SSM ListCommands", self._ssm.list_commands, CommandId=command_id,
                          expected={"InvalidCommandId": returning(None)})
        commands = listed["Commands"] if listed else []
        if not commands:
            return None
        command = commands[0]
        instance_ids = [str(instance) for instance in command.get("InstanceIds", [])]
        return SentCommand(command_id, str(command.get("Comment", "")), instance_ids)

    def invocation_output(self, command_id: str, instance_id: str) -> InvocationOutput:
        """One instance's status, exit code (None until it ends) and inline output; Pending while SSM does not show
        the invocation yet (it appears a moment after SendCommand)."""
        item = aws_call("SSM GetCommandInvocation", self._ssm.get_command_invocation, CommandId=command_id,
                        InstanceId=instance_id, expected={"InvocationDoesNotExist": returning(None)})
        if item is None:
            return InvocationOutput(instance_id, "Pending", None, "")
        status = str(item.get("Status", "Pending"))
        code = item.get("ResponseCode")
        stderr = str(item.get("StandardErrorContent", ""))
        output = str(item.get("StandardOutputContent", "")) + (f"\n[stderr]\n{stderr}" if stderr else "")
        return InvocationOutput(instance_id, status,
                                int(code) if code is not None and status in ("Success", "Failed") else None,
                                output, str(item.get("StandardOutputUrl") or "") or None)

    def find_commands(self, matches: Callable[[str], bool], sent_after: datetime) -> list[tuple[str, str]]:
        """(comment, command id) of every command sent since `sent_after` whose comment `matches`."""
        since = (sent_after - timedelta(minutes=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kwargs: dict[str, Any] = {"Filters": [{"key": "InvokedAfter", "value": since},
                                              {"key": "DocumentName", "value": DOCUMENT}]}
        found: list[tuple[str, str]] = []
        while True:
            page = aws_call("SSM ListCommands", self._ssm.list_commands, **kwargs)
            found += [(str(command.get("Comment", "")), str(command["CommandId"]))
                      for command in page.get("Commands", []) if matches(str(command.get("Comment", "")))]
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def command_state(self, command_id: str) -> CommandState | None:
        """The command's status and SSM's counts of its targets: one call, whatever the fleet size. None while
        SSM does not list the command yet."""
        commands = aws_call("SSM ListCommands", self._ssm.list_commands, CommandId=command_id)["Commands"]
        if not commands:
            return None
        command = commands[0]
        return CommandState(status=str(command["Status"]), status_details=str(command.get("StatusDetails", "")),
                            target_count=int(command.get("TargetCount", 0)),
                            completed_count=int(command.get("CompletedCount", 0)),
                            error_count=int(command.get("ErrorCount", 0)),
                            delivery_timed_out_count=int(command.get("DeliveryTimedOutCount", 0)))

    def list_invocations(self, command_id: str, details: bool = True) -> list[Invocation]:
        """Every instance's invocation, following NextToken (50 a page). With `details`, each carries its exit code
        and SSM's 2,500-character cut of its output; without, only its status (far less to parse on a large fleet)."""
        invocations: list[Invocation] = []
        kwargs: dict[str, Any] = {"CommandId": command_id, "Details": details, "MaxResults": 50}
        while True:
            page = aws_call("SSM ListCommandInvocations", self._ssm.list_command_invocations, **kwargs)
            for item in page.get("CommandInvocations", []):
                plugins = item.get("CommandPlugins") or [{}]
                invocations.append(Invocation(
                    instance_id=item["InstanceId"],
                    status=item["Status"],
                    response_code=plugins[0].get("ResponseCode"),
                    output=plugins[0].get("Output", ""),
                ))
            if not page.get("NextToken"):
                return invocations
            kwargs["NextToken"] = page["NextToken"]

    def full_output(self, command_id: str, instance_id: str) -> str:
        """Stdout and stderr of one instance, as long as SSM keeps them (24,000 and 8,000 characters)."""
        item = aws_call("SSM GetCommandInvocation", self._ssm.get_command_invocation, CommandId=command_id,
                        InstanceId=instance_id)
        stderr = item.get("StandardErrorContent", "")
        return str(item.get("StandardOutputContent", "")) + (f"\n[stderr]\n{stderr}" if stderr else "")

    def cancel(self, command_id: str) -> None:
        aws_call("SSM CancelCommand", self._ssm.cancel_command, CommandId=command_id)

    def ping_statuses(self, instances: InstancesSpec) -> dict[str, str]:
        """The SSM managed nodes among the target's instances and their PingStatus (Online, ConnectionLost, Inactive).
        An instance SSM does not manage is absent. By tags: the tag filters, ANDed as SendCommand's Targets are. By
        ids: naming one that is not a managed node fails the whole call (InvalidInstanceId), so then each is asked
        alone."""
        if instances.ids is None:
            tags = sorted((instances.tags or {}).items())
            filters = [{"Key": f"tag:{key}", "Values": [value]} for key, value in tags]
            return self._ping_statuses(filters) or {}
        found: dict[str, str] = {}
        ids = list(instances.ids)
        for start in range(0, len(ids), 50):
            batch = ids[start:start + 50]
            listed = self._ping_statuses([{"Key": "InstanceIds", "Values": batch}])
            if listed is None:
                for instance_id in batch:
                    found |= self._ping_statuses([{"Key": "InstanceIds", "Values": [instance_id]}]) or {}
            else:
                found |= listed
        return found

    def _ping_statuses(self, filters: list[dict[str, Any]]) -> dict[str, str] | None:
        """None when a named instance id is not a managed node."""
        kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 50}
        found: dict[str, str] = {}
        while True:
            page = aws_call("SSM DescribeInstanceInformation", self._ssm.describe_instance_information,
                            expected={"InvalidInstanceId": returning(None)}, **kwargs)
            if page is None:
                return None
            found |= {str(item["InstanceId"]): str(item.get("PingStatus", "")) for item in
                      page.get("InstanceInformationList", [])}
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]
