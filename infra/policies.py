"""berth's IAM policies, one per Lambda function and stage, rendered into `.chalice/policy-<stage>-<function>.json`.

Chalice reads static JSON files, so the statements live here once and `python -m infra.policies` writes the files;
tests/packaging checks that the files on disk are what this module renders, that every boto3 call the code makes
is allowed for every function that can reach it, and that nothing is wider than AWS allows.

`"Resource": "*"` appears only for actions that support no resource type in the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/): CodePipeline PutJobSuccessResult and
PutJobFailureResult; SSM ListCommands, ListCommandInvocations, GetCommandInvocation, CancelCommand and
DescribeInstanceInformation; EC2 DescribeInstances and DescribeTags; CodeDeploy ListDeploymentTargets,
BatchGetDeploymentTargets and PutLifecycleEventHookExecutionStatus; Elastic Load Balancing DescribeTargetHealth,
DescribeTargetGroups and DescribeTargetGroupAttributes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CHALICE_DIR = Path(__file__).resolve().parents[1] / ".chalice"
STAGES = ("dev", "prod")
MANAGED_TAG = "berth:managed"          # instances berth may send commands to carry this tag with the value "true"
SCHEDULE_GROUP = "default"             # BERTH_SCHEDULE_GROUP; change both together
EVENT_BUS = "default"                  # BERTH_EVENT_BUS, where berth publishes its own events; change both together
DOCUMENT = "AWS-RunShellScript"

Statement = dict[str, Any]


def table_name(stage: str) -> str:
    return f"berth-{stage}"


def scheduler_role_name(stage: str) -> str:
    return f"berth-{stage}-scheduler"


def dead_letter_queue_name(stage: str) -> str:
    return f"berth-{stage}-dead-letters"


def function_name(stage: str, function: str) -> str:
    """The Lambda function's name, as `chalice deploy` names it and as infra/resources.yaml sets it."""
    return f"berth-{stage}" if function == "api_handler" else f"berth-{stage}-{function}"


def _logs(stage: str) -> Statement:
    prefix = f"arn:aws:logs:*:*:log-group:/aws/lambda/berth-{stage}"
    return {"Sid": "OwnLogs", "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [prefix, f"{prefix}:*", f"{prefix}-*"]}


def _table(stage: str, *actions: str) -> Statement:
    table = f"arn:aws:dynamodb:*:*:table/{table_name(stage)}"
    resources = [table, f"{table}/index/*"] if {"Query", "Scan"} & set(actions) else [table]
    return {"Sid": "BerthTable", "Effect": "Allow", "Action": [f"dynamodb:{a}" for a in actions],
            "Resource": resources}


def _send_command() -> list[Statement]:
    return [
        {"Sid": "SendDeployDocument", "Effect": "Allow", "Action": "ssm:SendCommand",
         "Resource": f"arn:aws:ssm:*::document/{DOCUMENT}"},
        {"Sid": "SendToBerthInstances", "Effect": "Allow", "Action": "ssm:SendCommand",
         "Resource": "arn:aws:ec2:*:*:instance/*",
         "Condition": {"StringEquals": {f"ssm:resourceTag/{MANAGED_TAG}": "true"}}},
    ]


def _follow_commands(*extra: str) -> Statement:
    # No resource types for these in the Service Authorization Reference (AWS Systems Manager).
    return {"Sid": "FollowCommands", "Effect": "Allow",
            "Action": ["ssm:ListCommands", "ssm:ListCommandInvocations", *extra], "Resource": "*"}


def _read_invocations() -> Statement:
    return {"Sid": "ReadInvocations", "Effect": "Allow", "Action": "ssm:ListCommandInvocations", "Resource": "*"}


def _resolve() -> list[Statement]:
    return [
        # DescribeInstances and DescribeTags support no resource type (Service Authorization Reference, Amazon EC2).
        {"Sid": "ResolveInstances", "Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:DescribeTags"],
         "Resource": "*"},
        # The digest, the platforms (image index) and the scan findings of an image: all scoped to repositories.
        {"Sid": "ResolveImages", "Effect": "Allow",
         "Action": ["ecr:DescribeImages", "ecr:BatchGetImage", "ecr:DescribeImageScanFindings"],
         "Resource": "arn:aws:ecr:*:*:repository/*"},
    ]


def _managed_nodes() -> Statement:
    # No resource types for DescribeInstanceInformation (Service Authorization Reference, AWS Systems Manager): a plan
    # reports which of a target's instances SSM manages and whether they are Online (services/plan.py); a release task
    # runs on the first Online one (services/release_tasks.py).
    return {"Sid": "ReadManagedNodes", "Effect": "Allow", "Action": "ssm:DescribeInstanceInformation",
            "Resource": "*"}


def _read_alarms() -> Statement:
    # Metric alarms by ARN: a rollout in waves reads the alarms its spec names (services/rollout.py).
    return {"Sid": "ReadRolloutAlarms", "Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
            "Resource": "arn:aws:cloudwatch:*:*:alarm:*"}


def _load_balancers() -> list[Statement]:
    # A rollout behind `load_balancer` takes each batch out of its target groups and puts it back
    # (services/draining.py). Register/DeregisterTargets are scoped to target groups; the Describe calls support no
    # resource type (Service Authorization Reference, Elastic Load Balancing V2).
    return [
        {"Sid": "DrainTargetGroups", "Effect": "Allow",
         "Action": ["elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"],
         "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"},
        {"Sid": "ReadTargetHealth", "Effect": "Allow",
         "Action": ["elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetGroupAttributes"],
         "Resource": "*"},
    ]


def _schedule_retries(stage: str) -> list[Statement]:
    return [
        # GetSchedule: a name conflict is "already scheduled" only when that schedule carries the same retry.
        {"Sid": "ScheduleRetries", "Effect": "Allow", "Action": ["scheduler:CreateSchedule", "scheduler:GetSchedule"],
         "Resource": f"arn:aws:scheduler:*:*:schedule/{SCHEDULE_GROUP}/berth-retry-*"},
        {"Sid": "PassSchedulerRole", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": f"arn:aws:iam::*:role/{scheduler_role_name(stage)}",
         "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}},
    ]


def _codedeploy_read(targets: bool = True) -> list[Statement]:
    """Reading CodeDeploy deployments; with `targets`, their instances' diagnostics too (what the recorder reads)."""
    return [
        {"Sid": "ReadCodeDeployDeployments", "Effect": "Allow", "Action": "codedeploy:GetDeployment",
         "Resource": "arn:aws:codedeploy:*:*:deploymentgroup:*"},
        # No resource types for these two (Service Authorization Reference, AWS CodeDeploy).
        *([{"Sid": "ReadCodeDeployTargets", "Effect": "Allow",
            "Action": ["codedeploy:ListDeploymentTargets", "codedeploy:BatchGetDeploymentTargets"],
            "Resource": "*"}] if targets else []),
        # A retry looks for newer deployments of its group, and for its own deployment after an unanswered create.
        {"Sid": "ListCodeDeployDeployments", "Effect": "Allow",
         "Action": ["codedeploy:ListDeployments", "codedeploy:BatchGetDeployments"],
         "Resource": "arn:aws:codedeploy:*:*:deploymentgroup:*"},
    ]


def _codedeploy_redeploy() -> list[Statement]:
    # CreateDeployment also reads the group's deployment config and the revision it deploys again.
    return [
        {"Sid": "RedeployCodeDeployGroups", "Effect": "Allow", "Action": "codedeploy:CreateDeployment",
         "Resource": "arn:aws:codedeploy:*:*:deploymentgroup:*"},
        {"Sid": "ReadDeploymentConfigs", "Effect": "Allow", "Action": "codedeploy:GetDeploymentConfig",
         "Resource": "arn:aws:codedeploy:*:*:deploymentconfig:*"},
        {"Sid": "ReadApplicationRevisions", "Effect": "Allow", "Action": "codedeploy:GetApplicationRevision",
         "Resource": "arn:aws:codedeploy:*:*:application:*"},
    ]


def _complete_lifecycle_actions() -> Statement:
    # A new instance's launch lifecycle action (services/join_ends.py), completed by whichever handler settles its
    # join: on Auto Scaling groups only (Service Authorization Reference, Amazon EC2 Auto Scaling: autoScalingGroup).
    return {"Sid": "CompleteLaunchLifecycleActions", "Effect": "Allow",
            "Action": "autoscaling:CompleteLifecycleAction",
            "Resource": "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*"}


def _assume_target_roles() -> Statement:
    # A target with a location is reached through a role in its own account (chalicelib/services/places.py): only
    # roles named berth-*, the convention LocationSpec enforces, so a spec cannot make berth assume any other role.
    return {"Sid": "AssumeTargetRoles", "Effect": "Allow", "Action": "sts:AssumeRole",
            "Resource": "arn:aws:iam::*:role/berth-*"}


def _retry_stages() -> Statement:
    return {"Sid": "RetryPipelineStages", "Effect": "Allow", "Action": "codepipeline:RetryStageExecution",
            "Resource": "arn:aws:codepipeline:*:*:*/*"}


def _publish_events() -> Statement:
    # berth's own events (docs/notifications.md), on the one bus it publishes to (resource type: event-bus).
    return {"Sid": "PublishBerthEvents", "Effect": "Allow", "Action": "events:PutEvents",
            "Resource": f"arn:aws:events:*:*:event-bus/{EVENT_BUS}"}


def _dead_letters(stage: str) -> Statement:
    return {"Sid": "AsyncFailuresToDeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage",
            "Resource": f"arn:aws:sqs:*:*:{dead_letter_queue_name(stage)}"}


def statements(stage: str, function: str) -> list[Statement]:
    """The statements of one function's policy."""
    deploy = [*_send_command(), *_resolve(), _read_alarms(), *_load_balancers(), *_schedule_retries(stage),
              _publish_events(), _assume_target_roles()]
    # ConditionCheckItem: holding a target checks, in the lock's transaction, that no deployment started since.
    write = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem")
    # SSM CancelCommand: should two tries of one attempt both have reached SSM, the later command is cancelled.
    follow = _follow_commands("ssm:GetCommandInvocation", "ssm:CancelCommand")
    # Query: a release task reads the target's newest deployments (did it already pass for this digest?).
    release = ("Query",)
    by_function: dict[str, list[Statement]] = {
        "pipeline_job": [
            {"Sid": "JobResults", "Effect": "Allow",        # no resource types (AWS CodePipeline)
             "Action": ["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"], "Resource": "*"},
            _table(stage, *write, *release), *deploy, follow, _managed_nodes(), _complete_lifecycle_actions(),
            _dead_letters(stage)],
        "ssm_command_events": [
            _table(stage, *write, *release), *deploy, follow, _managed_nodes(), _complete_lifecycle_actions(),
            _dead_letters(stage)],
        "codedeploy_events": [
            # Query: the call analysis cannot tell DeploymentStore.list_deployments from CodeDeploy's ListDeployments.
            _table(stage, "GetItem", "PutItem", "UpdateItem", "Query"), *_codedeploy_read(), *_codedeploy_redeploy(),
            *_send_command(), _read_invocations(), *_schedule_retries(stage), _publish_events(), _dead_letters(stage)],
        "pipeline_action_failed": [
            # GetItem: the one retry path reads the failed target's breaker; a stage has no target, but the call
            # analysis cannot tell.
            _table(stage, "GetItem", "PutItem", "UpdateItem"), _retry_stages(), *_schedule_retries(stage),
            _publish_events(), _dead_letters(stage)],
        "retry_deployment": [
            # Scan: a join's look is served by the class that also matches a new instance against every target; the
            # call analysis cannot tell the two paths apart.
            _table(stage, *write, "Query", "Scan"), *deploy, follow, *_codedeploy_read(targets=False),
            *_codedeploy_redeploy(), _retry_stages(), _managed_nodes(), _complete_lifecycle_actions(),
            _dead_letters(stage)],
        "instance_launches": [
            # Scan: a new instance is matched against every registered target (DeploymentStore.list_targets).
            _table(stage, *write, *release, "Scan"), *deploy, follow, _managed_nodes(), _complete_lifecycle_actions(),
            _dead_letters(stage)],
        "codedeploy_hook": [
            _table(stage, "GetItem"), *_codedeploy_read()[:1],
            {"Sid": "ReportHookStatus", "Effect": "Allow",      # no resource types (AWS CodeDeploy)
             "Action": "codedeploy:PutLifecycleEventHookExecutionStatus", "Resource": "*"}],
        "api_handler": [
            _table(stage, *write, "Query", "Scan"), *deploy, follow, _managed_nodes(), _complete_lifecycle_actions()],
    }
    return [_logs(stage), *by_function[function]]


FUNCTIONS = ("pipeline_job", "ssm_command_events", "codedeploy_events", "pipeline_action_failed",
             "retry_deployment", "instance_launches", "codedeploy_hook", "api_handler")


def policy(stage: str, function: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements(stage, function)}


def union_policy(stage: str) -> dict[str, Any]:
    """Every function's statements in one document: the stage's default policy (policy-<stage>.json)."""
    merged: dict[str, Statement] = {}
    for function in FUNCTIONS:
        for statement in statements(stage, function):
            sid = statement["Sid"]
            if sid in merged and merged[sid] != statement:
                sid = f"{sid}{function.title().replace('_', '')}"
            merged.setdefault(sid, {**statement, "Sid": sid})
    return {"Version": "2012-10-17", "Statement": list(merged.values())}


def policy_file(stage: str, function: str | None = None) -> str:
    return f"policy-{stage}.json" if function is None else f"policy-{stage}-{function.replace('_', '-')}.json"


def rendered() -> dict[str, str]:
    """File name in .chalice/ -> contents."""
    files = {}
    for stage in STAGES:
        files[policy_file(stage)] = _dump(union_policy(stage))
        for function in FUNCTIONS:
            files[policy_file(stage, function)] = _dump(policy(stage, function))
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main() -> int:
    for name, text in rendered().items():
        (CHALICE_DIR / name).write_text(text)
        print(f"wrote .chalice/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
