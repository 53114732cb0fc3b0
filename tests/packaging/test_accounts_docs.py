"""docs/accounts.md: linked from the docs' index and the README, and naming every parameter of the templates that
set up member accounts."""

from __future__ import annotations

from tests.packaging.conftest import ROOT, load_template

DOC = ROOT / "docs" / "accounts.md"


def test_the_accounts_page_is_linked_from_the_index_and_the_readme() -> None:
    assert DOC.exists()
    assert "(accounts.md)" in (ROOT / "docs" / "README.md").read_text()
    assert "(docs/accounts.md)" in (ROOT / "README.md").read_text()


def test_every_member_template_parameter_and_berths_bus_parameters_are_documented() -> None:
    text = DOC.read_text()
    member = load_template(ROOT / "infra" / "member-account.yaml")
    for name in member["Parameters"]:
        assert f"`{name}`" in text, name
    for name in ("MemberAccounts", "OrganizationId"):
        assert name in load_template(ROOT / "infra" / "resources.yaml")["Parameters"]
        assert f"`{name}`" in text, name
        assert f"`{name}`" in (ROOT / "docs" / "deploy.md").read_text(), name


def test_the_docs_name_the_files_they_point_at() -> None:
    text = DOC.read_text()
    for path in ("infra/member-account.yaml", "infra/central-ecr-repository-policy.json"):
        assert f"(../{path})" in text and (ROOT / path).exists(), path
