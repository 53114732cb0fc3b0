"""berth's own role may assume the roles located targets name, and nothing else: `role/berth-*` in any account, only
for the functions that make a target's calls, and never `*`."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

import pytest

from chalicelib.domain.spec.location import ROLE_ARN
from infra import policies
from tests.packaging.boto_calls import required_actions
from tests.packaging.conftest import ROOT
from tests.packaging.test_iam import STAGES, _list, _policy_file, _statements, _statements_with

TARGET_CALLERS = {"pipeline_job", "ssm_command_events", "retry_deployment", "instance_launches", "api_handler"}
ROLE_RESOURCE = "arn:aws:iam::*:role/berth-*"


@pytest.mark.parametrize("stage", STAGES)
def test_roles_are_assumed_only_by_name_and_only_by_the_functions_that_reach_targets(stage: str) -> None:
    assumers = set()
    for function in policies.FUNCTIONS:
        for statement in _statements_with(_policy_file(stage, function), "sts:AssumeRole"):
            assert statement["Effect"] == "Allow"
            assert _list(statement["Action"]) == ["sts:AssumeRole"]
            assert _list(statement["Resource"]) == [ROLE_RESOURCE]
            assumers.add(function)
    assert assumers == TARGET_CALLERS


def test_the_code_that_reaches_targets_needs_assume_role_and_codedeploys_path_does_not() -> None:
    needed = {function for function, actions in required_actions().items() if "sts:AssumeRole" in actions}
    assert needed == TARGET_CALLERS
    assert all(actions["sts:AssumeRole"] == {"RoleAssumer.assume"} for actions in required_actions().values()
               if "sts:AssumeRole" in actions)


@pytest.mark.parametrize("stage", STAGES)
def test_no_statement_lets_berth_assume_any_role_or_pass_through_sts_wildcards(stage: str) -> None:
    documents = [_policy_file(stage, function) for function in policies.FUNCTIONS]
    documents.append(json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text()))
    for document in documents:
        for statement in _statements(document):
            actions = [action.lower() for action in _list(statement["Action"])]
            if any(action.startswith("sts:") for action in actions):
                assert actions == ["sts:assumerole"]
                assert _list(statement["Resource"]) == [ROLE_RESOURCE]


@pytest.mark.parametrize(("arn", "allowed"), [
    ("arn:aws:iam::210987654321:role/berth-target", True),
    ("arn:aws:iam::210987654321:role/admin", False),
    ("arn:aws:iam::210987654321:role/ops/berth-target", False),
    ("arn:aws:iam::210987654321:role/Berth-target", False),
])
def test_the_role_names_a_location_admits_are_exactly_those_the_policy_allows(arn: str, allowed: bool) -> None:
    assert bool(re.match(ROLE_ARN, arn)) is allowed
    assert fnmatchcase(arn, ROLE_RESOURCE) is allowed
