"""infra/member-account.yaml, what a member account deploys: cfn-lint clean; its role grants exactly the calls berth
makes about a located target (derived from berth's code, as berth's own policies are), scoped as narrowly as berth's
own and to the member's account, trusting only berth's functions that reach targets, with the external id; its rules
forward exactly what berth's own rules match, to berth's bus only."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from app import app
from infra import policies
from tests.packaging import boto_calls, conditions
from tests.packaging.conftest import REGION, ROOT, load_template
from tests.packaging.test_iam import NO_RESOURCE_TYPES, _list

MEMBER_TEMPLATE = ROOT / "infra" / "member-account.yaml"
MEMBER, BERTH = "210987654321", "123456789012"
# The gateways a located target's calls go through (chalicelib/services/places.py, TargetAws): every call they make is
# made with the member role's credentials. ECR stays with berth's own role (a central registry).
TARGET_GATEWAYS = {"SsmGateway", "InstanceDirectory", "AlarmWatch", "TargetGroups", "LifecycleActions"}
# berth's functions that reach targets, and so assume the member role.
TRUSTED_FUNCTIONS = {"pipeline_job", "ssm_command_events", "retry_deployment", "instance_launches", "api_handler"}
# What stays in berth's account: none of it may be granted in a member's.
BERTHS_OWN = ("dynamodb:", "scheduler:", "codepipeline:", "events:", "sqs:", "iam:", "sts:", "ecr:", "codedeploy:",
              "s3:", "logs:", "lambda:")


def _template() -> dict[str, Any]:
    return load_template(MEMBER_TEMPLATE)


def _sub(value: Any, **names: str) -> Any:
    """`Fn::Sub` strings with the pseudo parameters and `names` filled in; anything else as it is."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for name, filled in {"AWS::Partition": "aws", "AWS::AccountId": MEMBER, "AWS::Region": REGION,
                             **names}.items():
            text = text.replace("${" + name + "}", filled)
        assert "${" not in text, text
        return text
    return value


def _role_statements() -> list[dict[str, Any]]:
    role = _template()["Resources"]["TargetRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _granted() -> set[str]:
    return {a for s in _role_statements() if s["Effect"] == "Allow" for a in _list(s["Action"])}


def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--regions", REGION, "--", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)


# cfn-lint -------------------------------------------------------------------------------------------------------
def test_cfn_lint_passes_on_the_member_template() -> None:
    proc = _cfn_lint(MEMBER_TEMPLATE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_is_really_checking_the_member_template(tmp_path: Path) -> None:
    broken = copy.deepcopy(_template())
    broken["Resources"]["SsmCommandEventsToBerth"]["Properties"]["Targets"][0]["RoleArn"] = {
        "Fn::GetAtt": ["NoSuchRole", "Arn"]}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    proc = _cfn_lint(path)
    assert proc.returncode != 0 and "NoSuchRole" in proc.stdout


# The role berth assumes -----------------------------------------------------------------------------------------
def _target_gateways() -> set[str]:
    """TargetAws's gateway classes, where the code has them; the declared set otherwise."""
    places = ROOT / "chalicelib" / "services" / "places.py"
    if not places.exists():
        return TARGET_GATEWAYS
    tree = ast.parse(places.read_text())
    (target_aws,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TargetAws"]
    return {ast.unparse(n.annotation).strip("'\"") for n in target_aws.body if isinstance(n, ast.AnnAssign)}


def _target_calls() -> dict[str, set[str]]:
    """IAM action -> the `Gateway.method`s of a located target's gateways that make it."""
    classes = boto_calls.classes()
    calls: dict[str, set[str]] = {}
    for name in _target_gateways():
        for method, made in classes[name].calls.items():
            for service, call in made:
                action = f"{boto_calls.iam_prefix(service)}:{boto_calls.operations(service)[call]}"
                calls.setdefault(action, set()).add(f"{name}.{method}")
    return calls


def test_the_gateways_of_a_located_target_are_the_ones_this_test_knows() -> None:
    assert _target_gateways() == TARGET_GATEWAYS


def test_the_member_role_grants_exactly_the_calls_berth_makes_about_a_located_target() -> None:
    needed = _target_calls()
    assert {"ssm:SendCommand", "ec2:DescribeInstances", "cloudwatch:DescribeAlarms",
            "elasticloadbalancing:DeregisterTargets", "autoscaling:CompleteLifecycleAction"} <= set(needed)
    missing = sorted(set(needed) - _granted())
    assert not missing, "the member role lacks: " + ", ".join(f"{a} ({sorted(needed[a])})" for a in missing)
    assert not sorted(_granted() - set(needed)), "granted but never called about a target"


def test_every_call_about_a_target_that_berths_functions_make_is_a_member_role_call() -> None:
    """The same inventory as berth's own policies: of what each function needs, the target-side services' calls."""
    services = {action.split(":")[0] for action in _target_calls()}
    for function, actions in boto_calls.required_actions().items():
        for action in actions:
            if action.split(":")[0] in services:
                assert action in _granted(), f"{function}: {action}"


def test_nothing_of_berths_own_account_is_granted_in_a_member_account() -> None:
    assert not [a for a in _granted() if a.lower().startswith(BERTHS_OWN)]
    for statement in _role_statements():
        assert "NotAction" not in statement and "NotResource" not in statement
        assert not [a for a in _list(statement["Action"]) if a == "*" or a.endswith(":*")]


def test_the_member_role_is_scoped_like_berths_own_and_to_the_members_account() -> None:
    """Each resource is one berth's own policy allows for that action, narrowed to the member account; `*` only for
    actions that support no resource type."""
    berth = [s for s in policies.union_policy("prod")["Statement"] if s["Effect"] == "Allow"]
    for statement in _role_statements():
        resources = [_sub(r) for r in _list(statement["Resource"])]
        for action in _list(statement["Action"]):
            for resource in resources:
                if resource == "*":
                    assert action in NO_RESOURCE_TYPES, action
                    continue
                parts = resource.split(":")
                assert parts[4] in (MEMBER, ""), f"{action} on {resource}: not the member's account"
                allowed = [s for s in berth if action in _list(s["Action"])
                           and any(fnmatchcase(resource, r) for r in _list(s["Resource"]))]
                assert allowed, f"{action} on {resource}: wider than berth's own policy"
                assert all(s.get("Condition") == statement.get("Condition") for s in allowed
                           if any(r == resource.replace(MEMBER, "*") for r in _list(s["Resource"]))), action


def test_instances_get_commands_only_when_tagged_berth_managed() -> None:
    sends = [s for s in _role_statements() if "ssm:SendCommand" in _list(s["Action"])]
    for statement in sends:
        assert _list(statement["Action"]) == ["ssm:SendCommand"]
        resource = _sub(statement["Resource"])
        if ":document/" in resource:
            assert resource == "arn:aws:ssm:*::document/AWS-RunShellScript"
        else:
            assert resource == f"arn:aws:ec2:*:{MEMBER}:instance/*"
            assert statement["Condition"] == {"StringEquals": {"ssm:resourceTag/berth:managed": "true"}}
    assert len(sends) == 2


def test_the_role_trusts_only_berths_functions_that_reach_targets_with_the_external_id() -> None:
    template = _template()
    role = template["Resources"]["TargetRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow" and trust["Action"] == "sts:AssumeRole"
    assert set(trust["Principal"]) == {"AWS"}
    principals = [_sub(p, BerthAccountId=BERTH, BerthStage="prod") for p in trust["Principal"]["AWS"]]
    assert f"arn:aws:iam::{BERTH}:root" not in principals
    prefix = f"arn:aws:iam::{BERTH}:role/berth-prod-"
    assert all(p.startswith(prefix) for p in principals), principals
    assert {p.removeprefix(prefix) for p in principals} == TRUSTED_FUNCTIONS
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert template["Parameters"]["ExternalId"]["NoEcho"] is True


def test_the_trusted_functions_are_those_that_make_a_targets_calls() -> None:
    required = boto_calls.required_actions()
    target_actions = set(_target_calls())
    for function in TRUSTED_FUNCTIONS:
        assert target_actions & set(required[function]), f"{function} makes no call about a target"
    assumers = {function for function, actions in required.items() if "sts:AssumeRole" in actions}
    assert assumers <= TRUSTED_FUNCTIONS, f"these assume roles but the member role does not trust them: {assumers}"


def test_the_role_name_must_follow_berths_convention() -> None:
    import re

    from chalicelib.domain.spec.location import ROLE_ARN

    parameter = _template()["Parameters"]["RoleName"]
    assert parameter["Default"] == "berth-target"
    for name, admitted in (("berth-target", True), ("berth-web", True), ("target", False), ("Berth-x", False),
                           ("berth-", False)):
        assert bool(re.match(parameter["AllowedPattern"], name)) is admitted, name
        assert bool(re.match(ROLE_ARN, f"arn:aws:iam::{MEMBER}:role/{name}")) is admitted, name


def test_the_global_role_is_created_in_one_region_of_each_account() -> None:
    """A StackSet over several regions of one account would otherwise create the same named role twice."""
    template = _template()
    assert template["Resources"]["TargetRole"]["Condition"] == "IsRoleRegion"
    assert template["Conditions"]["IsRoleRegion"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "RoleRegion"}]}
    assert "RoleName" not in template["Resources"]["ForwarderRole"]["Properties"]


# Events to berth's bus ------------------------------------------------------------------------------------------
def _rules() -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in _template()["Resources"].items() if v["Type"] == "AWS::Events::Rule"}


def test_the_rules_forward_what_berths_own_rules_match_for_a_target() -> None:
    """Each of berth's event sources about instances, commands and deployments has a rule with the same pattern;
    CodePipeline's stays in berth's account, with its pipelines (and CodeDeploy's is forwarded only when asked)."""
    berths = {source.name: source.event_pattern for source in app.event_sources
              if hasattr(source, "event_pattern")}
    assert set(berths) == {"codedeploy_events", "ssm_command_events", "pipeline_action_failed", "instance_launches"}
    forwarded = [rule["EventPattern"] for rule in _rules().values()]
    for name, pattern in berths.items():
        if name != "pipeline_action_failed":
            assert pattern in forwarded, name
    assert len(forwarded) == 3


BUS_HERE = {"BerthAccountId": BERTH, "BerthEventBusArn": f"arn:aws:events:{REGION}:{BERTH}:event-bus/default",
            "ExternalId": "x" * 32}
RULES = {"SsmCommandEventsToBerth", "InstanceLaunchesToBerth", "CodedeployEventsToBerth"}


@pytest.mark.parametrize(("account", "region", "given", "rules", "role"), [
    (MEMBER, REGION, {}, {"SsmCommandEventsToBerth", "InstanceLaunchesToBerth"}, True),
    (MEMBER, "eu-west-1", {}, {"SsmCommandEventsToBerth", "InstanceLaunchesToBerth"}, False),
    (MEMBER, "eu-west-1", {"RoleRegion": "eu-west-1"}, {"SsmCommandEventsToBerth", "InstanceLaunchesToBerth"}, True),
    (MEMBER, REGION, {"ForwardCodeDeployEvents": "true"}, RULES, True),
    # berth's own account and region: its rules see the events already; forwarding them to itself would loop
    (BERTH, REGION, {"ForwardCodeDeployEvents": "true"}, set(), True),
    (BERTH, "eu-west-1", {}, {"SsmCommandEventsToBerth", "InstanceLaunchesToBerth"}, False),
])
def test_what_a_stack_creates_where(account: str, region: str, given: dict[str, str], rules: set[str],
                                    role: bool) -> None:
    """One StackSet over accounts and regions: the role once per account (RoleRegion), CodeDeploy's events only when
    asked (berth follows CodeDeploy in its own account), and never a rule that puts events back on berth's own bus.
    Every stack creates something (the forwarding role), as CloudFormation requires."""
    made = conditions.created(_template(), {**BUS_HERE, **given}, account, region)
    assert made & RULES == rules
    assert ("TargetRole" in made) is role
    assert "ForwarderRole" in made


def test_the_rules_put_events_on_berths_bus_only_with_a_role_that_may_do_nothing_else() -> None:
    template = _template()
    for name, rule in _rules().items():
        assert rule["State"] == "ENABLED", name
        assert "EventBusName" not in rule, name           # the default bus, where AWS services put their events
        assert rule["Targets"] == [{"Id": "berth", "Arn": {"Ref": "BerthEventBusArn"},
                                    "RoleArn": {"Fn::GetAtt": ["ForwarderRole", "Arn"]}}], name
    role = template["Resources"]["ForwarderRole"]["Properties"]
    assert [s["Principal"] for s in role["AssumeRolePolicyDocument"]["Statement"]] == [
        {"Service": "events.amazonaws.com"}]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements == [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Ref": "BerthEventBusArn"}}]
