"""`berth targets`, `berth targets get` and `berth status` say where each target lives: its location's account and
region, or berth's own account (`home`) and region. The API's target list carries both, derived from the spec."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.api.support import call, register
from tests.functional.cli_front import Front, berth

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
MEMBER = "210987654321"
ROLE = f"arn:aws:iam::{MEMBER}:role/berth-target"
EXTERNAL_ID = "berth-external-id-7f3a"
HOME_REGION = "us-east-1"


def _register_three(front: Front) -> None:
    register(front.world, "home-web", instances=0)
    register(front.world, "member-web", instances=0,
             location={"role_arn": ROLE, "external_id": EXTERNAL_ID, "region": "eu-west-1"})
    register(front.world, "member-here", instances=0, location={"role_arn": ROLE})


def _rows(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_the_api_lists_each_targets_account_and_region_null_at_home(front: Front) -> None:
    _register_three(front)
    reply = call("GET", "/targets")
    assert reply.status == 200
    where = {t["name"]: (t["account"], t["region"]) for t in reply.body["targets"]}
    assert where == {"home-web": (None, None), "member-web": (MEMBER, "eu-west-1"), "member-here": (MEMBER, None)}
    assert EXTERNAL_ID not in json.dumps(reply.body)


def test_berth_targets_shows_account_and_region_with_home_for_berths_own(front: Front) -> None:
    _register_three(front)
    code, out, err = berth(front, "targets", "--region", HOME_REGION)
    assert code == 0, err
    assert out.splitlines()[0].split()[:3] == ["TARGET", "ACCOUNT", "REGION"]
    rows = _rows(out)
    assert rows["home-web"][1:3] == ["home", HOME_REGION]
    assert rows["member-web"][1:3] == [MEMBER, "eu-west-1"]
    assert rows["member-here"][1:3] == [MEMBER, HOME_REGION]     # no region in its location: berth's own
    assert EXTERNAL_ID not in out


def test_berth_targets_json_is_the_apis_answer(front: Front) -> None:
    _register_three(front)
    code, out, _ = berth(front, "targets", "--json")
    assert code == 0
    listed = {t["name"]: t for t in json.loads(out)["targets"]}
    assert listed["member-web"]["account"] == MEMBER and listed["home-web"]["account"] is None


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_berth_targets_get_says_where_on_stderr_and_keeps_the_spec_on_stdout(front: Front, output: str) -> None:
    _register_three(front)
    code, out, err = berth(front, "targets", "get", "member-web", "--output", output, "--region", HOME_REGION)
    assert code == 0
    assert err == f"member-web: account {MEMBER}, region eu-west-1, as {ROLE}\n"
    printed = json.loads(out) if output == "json" else yaml.safe_load(out)
    assert printed == call("GET", "/targets/member-web").body["spec"]     # stdout: the spec alone, as `put` takes it
    code, _, err = berth(front, "targets", "get", "home-web", "--region", HOME_REGION)
    assert code == 0 and err == f"home-web: home (berth's own account), region {HOME_REGION}\n"


def test_berth_status_says_where_the_target_lives(front: Front) -> None:
    _register_three(front)
    code, out, _ = berth(front, "status", "member-here", "--region", HOME_REGION)
    assert code == 0 and f"where       account {MEMBER}, region {HOME_REGION}, as {ROLE}" in out.splitlines()
    code, out, _ = berth(front, "status", "home-web", "--region", HOME_REGION)
    assert code == 0 and f"where       home (berth's own account), region {HOME_REGION}" in out.splitlines()
    assert EXTERNAL_ID not in out


def test_the_openapi_document_describes_account_and_region_as_optional() -> None:
    reply = call("GET", "/openapi.json")
    assert reply.status == 200
    summary = reply.body["components"]["schemas"]["TargetSummary"]
    for field in ("account", "region"):
        assert summary["properties"][field]["anyOf"] == [{"type": "string"}, {"type": "null"}], field
        assert field not in summary["required"], field
