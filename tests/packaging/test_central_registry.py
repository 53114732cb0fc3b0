"""The repository policy docs/accounts.md gives a central ECR registry (infra/central-ecr-repository-policy.json):
valid, naming real ECR actions; member accounts may pull and nothing more; berth's functions may read exactly what
their code reads about an image, and berth's own policy allows those reads on any account's repositories."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from infra import policies
from tests.packaging import boto_calls
from tests.packaging.conftest import ROOT
from tests.packaging.test_iam import _list

EXAMPLE = ROOT / "infra" / "central-ecr-repository-policy.json"
PULL = {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}
BERTH_ROLE = "arn:aws:iam::123456789012:role/berth-prod-"


def _statements() -> dict[str, dict[str, Any]]:
    document = json.loads(EXAMPLE.read_text())
    assert document["Version"] == "2012-10-17"
    return {s["Sid"]: s for s in document["Statement"]}


def _berths_ecr_reads() -> dict[str, set[str]]:
    """function -> the ECR actions its code needs."""
    return {function: {a for a in actions if a.startswith("ecr:")}
            for function, actions in boto_calls.required_actions().items()}


def test_every_action_is_a_real_ecr_action_and_none_is_a_wildcard() -> None:
    known = {f"ecr:{name}" for name in boto_calls.operations("ecr").values()}
    for sid, statement in _statements().items():
        assert statement["Effect"] == "Allow", sid
        assert "Resource" not in statement, f"{sid}: a repository policy applies to its repository"
        for action in _list(statement["Action"]):
            assert action in known, f"{sid}: {action}"


def test_member_accounts_may_pull_and_nothing_more() -> None:
    statement = _statements()["MemberAccountsPull"]
    assert set(statement["Action"]) == PULL
    assert all(p.endswith(":root") for p in statement["Principal"]["AWS"])


def test_berths_functions_may_read_what_their_code_reads_about_an_image() -> None:
    statement = _statements()["BerthResolvesImages"]
    reads = _berths_ecr_reads()
    assert set(statement["Action"]) == set().union(*reads.values())
    readers = {function for function, actions in reads.items() if actions}
    assert {p.removeprefix(BERTH_ROLE) for p in statement["Principal"]["AWS"]} == readers


def test_berths_own_policy_allows_those_reads_on_a_repository_of_another_account() -> None:
    repository = "arn:aws:ecr:eu-west-1:999988887777:repository/web"
    for function, actions in _berths_ecr_reads().items():
        statements = policies.policy("prod", function)["Statement"]
        for action in actions:
            assert any(action in _list(s["Action"]) and any(fnmatchcase(repository, r) for r in _list(s["Resource"]))
                       for s in statements), f"{function}: {action}"
