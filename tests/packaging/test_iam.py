"""berth's IAM: every boto3 call the code makes is allowed for every function that can reach it, and nothing is
wider than AWS allows. Checked on the policy files in .chalice/ and on the roles in the packaged template."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from infra import policies
from tests.packaging import boto_calls
from tests.packaging.conftest import ROOT, Packaged

# Actions for which the Service Authorization Reference lists no resource type, so a policy must say
# "Resource": "*" (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html:
# list_awscodepipeline.html, list_awssystemsmanager.html, list_amazonec2.html, list_awscodedeploy.html,
# list_awselasticloadbalancingv2.html).
NO_RESOURCE_TYPES = frozenset({
    "codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult",
    "ssm:ListCommands", "ssm:ListCommandInvocations", "ssm:GetCommandInvocation", "ssm:CancelCommand",
    "ssm:DescribeInstanceInformation",
    "ec2:DescribeInstances", "ec2:DescribeTags",
    "codedeploy:ListDeploymentTargets", "codedeploy:BatchGetDeploymentTargets",
    "codedeploy:PutLifecycleEventHookExecutionStatus",
    "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
})
# Calls made with someone else's credentials: the function's role needs no permission for them.
NOT_THE_ROLES_CALLS = {
    "s3:GetObject": "the input artifact is read with the job's artifactCredentials (clients.artifact_s3_client)",
}
# Granted although no boto3 call in berth names them, and why.
GRANTED_BESIDES_CALLS = {
    "logs:CreateLogGroup": "the Lambda runtime writes the function's logs",
    "logs:CreateLogStream": "the Lambda runtime writes the function's logs",
    "logs:PutLogEvents": "the Lambda runtime writes the function's logs",
    "iam:PassRole": "CreateSchedule passes the scheduler role (a dependent action of scheduler:CreateSchedule)",
    "sqs:SendMessage": "Lambda sends failed asynchronous invocations to the dead-letter queue with the role",
    "codedeploy:GetDeploymentConfig": "CreateDeployment reads the group's deployment configuration",
    "codedeploy:GetApplicationRevision": "CreateDeployment reads the revision it deploys again",
}
STAGES = ("dev", "prod")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _list(document["Statement"])]


def _allows(document: dict[str, Any], action: str) -> bool:
    return any(s["Effect"] == "Allow" and any(fnmatchcase(action.lower(), a.lower()) for a in _list(s["Action"]))
               for s in _statements(document))


def _granted(document: dict[str, Any]) -> set[str]:
    return {a for s in _statements(document) if s["Effect"] == "Allow" for a in _list(s["Action"])}


def _policy_file(stage: str, function: str) -> dict[str, Any]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config["stages"][stage]
    name = stage_config.get("lambda_functions", {}).get(function, {}).get("iam_policy_file") \
        or stage_config.get("iam_policy_file") or config.get("iam_policy_file")
    assert name, f"{stage}/{function} has no policy file"
    return dict(json.loads((ROOT / ".chalice" / name).read_text()))


def _role_policies(package: Packaged) -> dict[str, dict[str, Any]]:
    """Lambda function name (as in app.py) -> the policy document of its role in the packaged template."""
    resources = package.resources
    found = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        handler = resource["Properties"]["Handler"].removeprefix("app.")
        function = boto_calls.ROUTE_DECORATOR_FUNCTION if handler == "app" else handler
        role = resources[resource["Properties"]["Role"]["Fn::GetAtt"][0]]
        (policy,) = role["Properties"]["Policies"]
        found[function] = policy["PolicyDocument"]
    return found


def _all_documents(packaged: dict[str, Packaged] | None = None) -> list[tuple[str, dict[str, Any]]]:
    docs = [(path.name, json.loads(path.read_text())) for path in sorted((ROOT / ".chalice").glob("policy-*.json"))]
    for stage, package in (packaged or {}).items():
        for name, resource in package.resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                docs += [(f"{stage}:{name}", p["PolicyDocument"]) for p in resource["Properties"].get("Policies", [])]
            elif resource["Type"] == "AWS::IAM::Policy":
                docs.append((f"{stage}:{name}", resource["Properties"]["PolicyDocument"]))
    return docs


# The analysis itself ------------------------------------------------------------------------------------------
def test_the_analysis_finds_berths_calls() -> None:
    required = boto_calls.required_actions()
    assert set(required) == set(policies.FUNCTIONS)
    assert {"ssm:SendCommand", "codepipeline:PutJobSuccessResult", "ecr:DescribeImages",
            "dynamodb:PutItem", "scheduler:CreateSchedule"} <= set(required["pipeline_job"])
    assert "codedeploy:PutLifecycleEventHookExecutionStatus" in required["codedeploy_hook"]
    assert "codedeploy:PutLifecycleEventHookExecutionStatus" not in required["codedeploy_events"]
    assert "ssm:CancelCommand" in required["api_handler"]
    assert "codepipeline:RetryStageExecution" in required["retry_deployment"]
    clients = [c for c in boto_calls.classes().values() if c.clients]
    for client in clients:     # a client class whose calls the scan cannot see would hide its permissions
        assert any(client.calls.values()), f"{client.name} holds a client but no call on it was found"


def test_every_module_that_catches_botocore_errors_holds_a_client_class() -> None:
    modules = {c.module for c in boto_calls.classes().values() if c.clients}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        text = path.read_text()
        if "ClientError" in text and "def __init__" in text and "adapters/errors.py" not in str(path):
            assert str(path.relative_to(ROOT)) in modules, f"{path}: its boto3 client is not recognised"


# Coverage ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", STAGES)
def test_every_boto3_call_is_allowed_by_the_policy_file_of_each_function_that_reaches_it(stage: str) -> None:
    missing = []
    for function, actions in sorted(boto_calls.required_actions().items()):
        document = _policy_file(stage, function)
        for action, callers in sorted(actions.items()):
            if action not in NOT_THE_ROLES_CALLS and not _allows(document, action):
                missing.append(f"{function}: {action} (from {', '.join(sorted(callers))})")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("stage", STAGES)
def test_every_boto3_call_is_allowed_by_the_role_of_each_packaged_function(
        packaged: dict[str, Packaged], stage: str) -> None:
    roles = _role_policies(packaged[stage])
    required = boto_calls.required_actions()
    assert set(roles) == set(required)
    missing = [f"{function}: {action}" for function, actions in required.items() for action in actions
               if action not in NOT_THE_ROLES_CALLS and not _allows(roles[function], action)]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("stage", STAGES)
def test_no_function_is_granted_an_action_its_code_does_not_need(stage: str) -> None:
    required = boto_calls.required_actions()
    extra = []
    for function in policies.FUNCTIONS:
        for action in sorted(_granted(_policy_file(stage, function)) - set(required[function])):
            if action not in GRANTED_BESIDES_CALLS:
                extra.append(f"{function}: {action}")
    assert not extra, "granted but never called:\n" + "\n".join(extra)


def test_the_policy_files_are_what_infra_policies_renders() -> None:
    for name, text in policies.rendered().items():
        path = ROOT / ".chalice" / name
        assert path.exists() and path.read_text() == text, f"run `python -m infra.policies` ({name} differs)"


def test_each_real_stage_gives_every_function_its_own_policy() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False
    for stage in STAGES:
        functions = config["stages"][stage]["lambda_functions"]
        for function in policies.FUNCTIONS:
            assert functions[function]["iam_policy_file"] == policies.policy_file(stage, function)


# Least privilege -----------------------------------------------------------------------------------------------
def test_no_wildcard_actions_and_resource_star_only_where_aws_allows_nothing_narrower(
        packaged: dict[str, Packaged]) -> None:
    problems = []
    for name, document in _all_documents(packaged):
        for statement in _statements(document):
            assert "NotAction" not in statement and "NotResource" not in statement, name
            actions = _list(statement["Action"])
            problems += [f"{name}: action {a}" for a in actions if a == "*" or a.endswith(":*")]
            if "*" in _list(statement.get("Resource", [])):
                problems += [f"{name}: {a} on *" for a in actions if a not in NO_RESOURCE_TYPES]
    assert not problems, "\n".join(problems)


def _statements_with(document: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _statements(document) if action in _list(s["Action"])]


@pytest.mark.parametrize("stage", STAGES)
def test_send_command_only_with_the_shell_document_on_berth_instances(stage: str) -> None:
    for function in policies.FUNCTIONS:
        for statement in _statements_with(_policy_file(stage, function), "ssm:SendCommand"):
            assert _list(statement["Action"]) == ["ssm:SendCommand"]
            for resource in _list(statement["Resource"]):
                if ":document/" in resource:
                    assert resource == "arn:aws:ssm:*::document/AWS-RunShellScript"
                else:
                    assert resource == "arn:aws:ec2:*:*:instance/*"
                    assert statement["Condition"] == {"StringEquals": {"ssm:resourceTag/berth:managed": "true"}}


@pytest.mark.parametrize("stage", STAGES)
def test_dynamodb_only_on_berths_table_and_its_indexes(stage: str) -> None:
    table = f"arn:aws:dynamodb:*:*:table/berth-{stage}"
    for function in policies.FUNCTIONS:
        for statement in _statements(_policy_file(stage, function)):
            if any(a.startswith("dynamodb:") for a in _list(statement["Action"])):
                assert set(_list(statement["Resource"])) <= {table, f"{table}/index/*"}, function


@pytest.mark.parametrize("stage", STAGES)
def test_schedules_and_the_role_they_pass_are_berths_own(stage: str) -> None:
    for function in policies.FUNCTIONS:
        document = _policy_file(stage, function)
        for statement in _statements_with(document, "scheduler:CreateSchedule"):
            assert _list(statement["Resource"]) == ["arn:aws:scheduler:*:*:schedule/default/berth-retry-*"]
        for statement in _statements_with(document, "iam:PassRole"):
            assert _list(statement["Resource"]) == [f"arn:aws:iam::*:role/berth-{stage}-scheduler"]
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
        if _statements_with(document, "scheduler:CreateSchedule"):
            assert _statements_with(document, "iam:PassRole"), f"{function} schedules but cannot pass the role"


@pytest.mark.parametrize("stage", STAGES)
def test_alarms_are_read_by_alarm_arn_and_only_by_the_functions_that_deploy(stage: str) -> None:
    readers = set()
    for function in policies.FUNCTIONS:
        for statement in _statements_with(_policy_file(stage, function), "cloudwatch:DescribeAlarms"):
            assert _list(statement["Action"]) == ["cloudwatch:DescribeAlarms"]
            assert _list(statement["Resource"]) == ["arn:aws:cloudwatch:*:*:alarm:*"]
            readers.add(function)
    assert readers == {"pipeline_job", "ssm_command_events", "retry_deployment", "instance_launches", "api_handler"}


@pytest.mark.parametrize("stage", STAGES)
def test_targets_are_drained_only_from_target_groups_and_only_by_the_functions_that_deploy(stage: str) -> None:
    drainers = set()
    for function in policies.FUNCTIONS:
        for action in ("elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets"):
            for statement in _statements_with(_policy_file(stage, function), action):
                assert _list(statement["Resource"]) == ["arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"]
                drainers.add(function)
    assert drainers == {"pipeline_job", "ssm_command_events", "retry_deployment", "instance_launches", "api_handler"}


# Who may call which route ------------------------------------------------------------------------------------------
# The execute-api resources docs/operations.md gives to allow `berth logs` and deny `berth exec` (or the reverse):
# arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/<one of these>.
LOGS_RESOURCES = ("GET/targets/*/logs", "GET/targets/*/logs/*")
EXEC_RESOURCES = ("POST/targets/*/exec", "GET/targets/*/exec/*")
FREEZE_RESOURCES = ("POST/targets/*/freeze",)
UNFREEZE_RESOURCES = ("POST/targets/*/unfreeze",)


def test_logs_and_exec_routes_can_be_allowed_and_denied_apart() -> None:
    """execute-api's `*` matches across `/` as fnmatch's does: each pattern must match its own routes and no other."""
    import re

    from app import api

    matched: dict[str, set[str]] = {"logs": set(), "exec": set(), "freeze": set(), "unfreeze": set()}
    for route in api.table:
        resource = route.method + re.sub(r"\{[^}]+\}", "web", route.path)
        for kind, patterns in (("logs", LOGS_RESOURCES), ("exec", EXEC_RESOURCES), ("freeze", FREEZE_RESOURCES),
                               ("unfreeze", UNFREEZE_RESOURCES)):
            if any(fnmatchcase(resource, pattern) for pattern in patterns):
                matched[kind].add(route.name)
    assert matched == {"logs": {"start_logs", "read_logs"}, "exec": {"start_exec", "read_exec"},
                       "freeze": {"freeze_target"}, "unfreeze": {"unfreeze_target"}}
    docs = (ROOT / "docs" / "operations.md").read_text()
    for pattern in (*LOGS_RESOURCES, *EXEC_RESOURCES, *FREEZE_RESOURCES, *UNFREEZE_RESOURCES):
        assert f"/*/{pattern}\"" in docs, f"docs/operations.md does not show {pattern}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_can_query_the_audit_indexes(stage: str) -> None:
    """GET /deployments reads the `by_time`, `by_caller` and `by_digest` indexes (adapters/store/audit.py)."""
    from chalicelib.adapters.store import table_definition

    table = f"arn:aws:dynamodb:*:*:table/berth-{stage}"
    indexes = {i["IndexName"] for i in table_definition(f"berth-{stage}")["GlobalSecondaryIndexes"]}
    assert {"by_time", "by_caller", "by_digest"} <= indexes
    statements = _statements_with(_policy_file(stage, "api_handler"), "dynamodb:Query")
    resources = {r for s in statements for r in _list(s["Resource"])}
    assert all(any(fnmatchcase(f"{table}/index/{index}", r) for r in resources) for index in indexes)


def test_history_across_targets_can_be_allowed_apart_from_everything_else() -> None:
    """An auditor's policy allows `GET/deployments` alone: it matches the audit route and no other."""
    import re

    from app import api

    matched = {route.name for route in api.table
               if fnmatchcase(route.method + re.sub(r"\{[^}]+\}", "web", route.path), "GET/deployments")}
    assert matched == {"search_deployments"}


@pytest.mark.parametrize("stage", STAGES)
def test_lifecycle_actions_are_completed_on_auto_scaling_groups_only(stage: str) -> None:
    completers = set()
    for function in policies.FUNCTIONS:
        for statement in _statements_with(_policy_file(stage, function), "autoscaling:CompleteLifecycleAction"):
            assert _list(statement["Action"]) == ["autoscaling:CompleteLifecycleAction"]
            assert _list(statement["Resource"]) == [
                "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*"]
            completers.add(function)
    # the new instance's Lambda, and every one that can settle its join deployment
    assert completers == {"instance_launches", "pipeline_job", "ssm_command_events", "retry_deployment",
                          "api_handler"}
