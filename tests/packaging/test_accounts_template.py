"""berth's own template for member accounts (infra/resources.yaml): the event-bus policy exists only for the accounts
or the organization it is given, and the function roles have the names a member account's role trusts."""

from __future__ import annotations

from typing import Any

import pytest

from infra.policies import FUNCTIONS
from tests.packaging import conditions
from tests.packaging.conftest import ROOT, Packaged, load_template
from tests.packaging.test_member_account import TRUSTED_FUNCTIONS

BUS_POLICIES = ("MemberAccountsBusPolicy", "OrganizationBusPolicy")


def _template() -> dict[str, Any]:
    return load_template(ROOT / "infra" / "resources.yaml")


def _created(given: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The bus policies a stack with these parameter values creates, with their Refs to parameters resolved."""
    template = _template()
    values = conditions.parameters(template, given)
    return {name: _resolve_refs(template["Resources"][name]["Properties"], values)
            for name in conditions.created(template, given) & set(BUS_POLICIES)}


def _resolve_refs(node: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve_refs(item, parameters) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in parameters:
            return parameters[node["Ref"]]
        return {key: _resolve_refs(value, parameters) for key, value in node.items()}
    return node


BUS = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}


def test_without_member_accounts_or_an_organization_there_is_no_bus_policy() -> None:
    assert _created({"Stage": "prod"}) == {}


def test_listed_member_accounts_may_put_events_on_the_default_bus_and_nothing_else() -> None:
    created = _created({"Stage": "prod", "MemberAccounts": "210987654321,111122223333"})
    assert set(created) == {"MemberAccountsBusPolicy"}
    policy = created["MemberAccountsBusPolicy"]
    assert policy["EventBusName"] == "default"
    assert policy["StatementId"] == {"Fn::Sub": "berth-${Stage}-member-accounts"}
    assert policy["Statement"] == {"Effect": "Allow", "Principal": {"AWS": ["210987654321", "111122223333"]},
                                   "Action": "events:PutEvents", "Resource": BUS}


def test_an_organization_may_put_events_only_through_its_org_id() -> None:
    created = _created({"Stage": "prod", "OrganizationId": "o-a1b2c3d4e5"})
    assert set(created) == {"OrganizationBusPolicy"}
    statement = created["OrganizationBusPolicy"]["Statement"]
    assert statement == {"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": BUS,
                         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}


def test_accounts_and_an_organization_together_give_two_statements_with_their_own_ids() -> None:
    created = _created({"Stage": "dev", "MemberAccounts": "210987654321", "OrganizationId": "o-a1b2c3d4e5"})
    assert set(created) == set(BUS_POLICIES)
    assert len({str(p["StatementId"]) for p in created.values()}) == 2


@pytest.mark.parametrize(("value", "admitted"), [("", True), ("o-a1b2c3d4e5", True), ("o-", False),
                                                 ("r-a1b2c3d4e5", False), ("o-A1B2C3D4E5", False)])
def test_the_organization_id_parameter_admits_only_an_org_id(value: str, admitted: bool) -> None:
    import re

    assert bool(re.match(_template()["Parameters"]["OrganizationId"]["AllowedPattern"], value)) is admitted


# The names a member account's role trusts ---------------------------------------------------------------------
CHALICE_ROLES = {"pipeline_job": "PipelineJobRole", "ssm_command_events": "SsmCommandEventsRole",
                 "codedeploy_events": "CodedeployEventsRole", "pipeline_action_failed": "PipelineActionFailedRole",
                 "retry_deployment": "RetryDeploymentRole", "instance_launches": "InstanceLaunchesRole",
                 "codedeploy_hook": "CodedeployHookRole", "api_handler": "ApiHandlerRole"}


def test_every_function_role_is_named_as_chalice_deploy_names_it() -> None:
    """`chalice deploy` names a function's role <app>-<stage>-<function> (chalice/deploy/appgraph.py); the packaged
    template would leave the name to CloudFormation, so infra/resources.yaml sets the same one."""
    resources = _template()["Resources"]
    assert set(CHALICE_ROLES) == set(FUNCTIONS)
    for function, logical in CHALICE_ROLES.items():
        assert resources[logical]["Properties"]["RoleName"] == {"Fn::Sub": f"berth-${{Stage}}-{function}"}
    assert TRUSTED_FUNCTIONS <= set(CHALICE_ROLES)


def test_the_functions_that_match_events_know_berths_own_account() -> None:
    """An event's `account` tells a home target's events from a member's: berth reads its own from BERTH_ACCOUNT_ID."""
    resources = _template()["Resources"]
    for logical in ("PipelineJob", "SsmCommandEvents", "CodedeployEvents", "PipelineActionFailed", "RetryDeployment",
                    "InstanceLaunches", "APIHandler"):
        variables = resources[logical]["Properties"]["Environment"]["Variables"]
        assert variables["BERTH_ACCOUNT_ID"] == {"Fn::Sub": "${AWS::AccountId}"}, logical


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_packaged_function_roles_carry_those_names(packaged: dict[str, Packaged], stage: str) -> None:
    resources = packaged[stage].resources
    for function, logical in CHALICE_ROLES.items():
        role = resources[logical]
        assert role["Type"] == "AWS::IAM::Role"
        assert role["Properties"]["RoleName"] == {"Fn::Sub": f"berth-${{Stage}}-{function}"}
        handlers = [r for r in resources.values() if r["Type"] == "AWS::Serverless::Function"
                    and r["Properties"]["Role"] == {"Fn::GetAtt": [logical, "Arn"]}]
        assert len(handlers) == 1, logical
        handler = handlers[0]["Properties"]["Handler"].removeprefix("app.")
        assert (handler if handler != "app" else "api_handler") == function
    for name in BUS_POLICIES:
        assert resources[name]["Type"] == "AWS::Events::EventBusPolicy"
    for logical in ("SsmCommandEvents", "InstanceLaunches", "CodedeployEvents"):
        variables = resources[logical]["Properties"]["Environment"]["Variables"]
        assert variables["BERTH_ACCOUNT_ID"] == {"Fn::Sub": "${AWS::AccountId}"}, logical
