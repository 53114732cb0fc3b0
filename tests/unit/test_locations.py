"""Where a target lives and which events are its own (chalicelib/domain/spec/location.py), and the session names
berth assumes a target's role with (chalicelib/services/places.py)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.spec.location import Home, LocationSpec, lives_in, place_of
from chalicelib.services.places import session_name
from tests.unit.spec_helpers import error_of, parse

HOME = Home("123456789012", "us-east-1")
A = LocationSpec(role_arn="arn:aws:iam::210987654321:role/berth-target", region="eu-west-1")
A_HOME_REGION = LocationSpec(role_arn="arn:aws:iam::210987654321:role/berth-target")


def test_a_location_is_its_roles_account_in_its_region_or_berths() -> None:
    assert place_of(A, HOME) == ("210987654321", "eu-west-1")
    assert place_of(A_HOME_REGION, HOME) == ("210987654321", "us-east-1")
    assert place_of(None, HOME) == ("123456789012", "us-east-1")


@pytest.mark.parametrize(("location", "account", "region", "home", "expected"), [
    (None, "123456789012", "us-east-1", HOME, True),
    (None, "123456789012", "us-west-2", HOME, True),        # a home event's region is not checked, as before
    (None, "210987654321", "us-east-1", HOME, False),       # another account's event is not a home target's
    (None, "", "", HOME, True),                             # an event that does not say is berth's own
    (None, "999999999999", "us-east-1", Home("", "us-east-1"), True),    # berth's account not known: as before
    (A, "210987654321", "eu-west-1", HOME, True),
    (A, "210987654321", "us-east-1", HOME, False),          # its account, another region
    (A, "123456789012", "eu-west-1", HOME, False),
    (A, "999999999999", "eu-west-1", Home("", "us-east-1"), False),
    (A_HOME_REGION, "210987654321", "us-east-1", HOME, True),
    (A_HOME_REGION, "210987654321", "", HOME, True),
])
def test_which_events_are_a_targets_own(location: LocationSpec | None, account: str, region: str, home: Home,
                                        expected: bool) -> None:
    assert lives_in(location, account, region, home) is expected


def test_the_account_comes_from_the_role_arn() -> None:
    assert A.account == "210987654321"


@pytest.mark.parametrize("about", ["d-20261127195600-0a1b2c3d", "web-prod", "i-0123456789abcdef0", "x" * 100])
def test_session_names_are_berth_prefixed_and_within_stss_64_characters(about: str) -> None:
    name = session_name(about)
    assert name.startswith("berth-") and 2 <= len(name) <= 64
    assert name == f"berth-{about}"[:64]


# the spec field, validated at the edge ------------------------------------------------------------------------------
def with_location(example_spec: dict[str, Any], location: Any) -> dict[str, Any]:
    example_spec["location"] = location
    return example_spec


def test_a_spec_without_location_reads_as_before(example_spec: dict[str, Any]) -> None:
    spec = parse(example_spec)
    assert spec.location is None and "location" not in spec.model_dump()


def test_the_issue_example_parses(example_spec: dict[str, Any]) -> None:
    spec = parse(with_location(example_spec, {"role_arn": "arn:aws:iam::210987654321:role/berth-target",
                                              "external_id": "abc-123", "region": "eu-west-1"}))
    assert spec.location == LocationSpec(role_arn="arn:aws:iam::210987654321:role/berth-target",
                                         external_id="abc-123", region="eu-west-1")


@pytest.mark.parametrize(("location", "field"), [
    ({"role_arn": "arn:aws:iam::210987654321:role/admin"}, "location.role_arn"),
    ({"role_arn": "arn:aws:iam::210987654321:role/ops/berth-target"}, "location.role_arn"),
    ({"role_arn": "arn:aws:iam::*:role/berth-target"}, "location.role_arn"),
    ({"role_arn": "arn:aws:iam::210987654321:role/berth-x", "external_id": "x"}, "location.external_id"),
    ({"role_arn": "arn:aws:iam::210987654321:role/berth-x", "external_id": "a b"}, "location.external_id"),
    ({"role_arn": "arn:aws:iam::210987654321:role/berth-x", "region": "Europe"}, "location.region"),
    ({"role_arn": "arn:aws:iam::210987654321:role/berth-x", "account": "1"}, "location.account"),
    ({}, "location.role_arn"),
])
def test_a_refusal_names_the_field(example_spec: dict[str, Any], location: dict[str, Any], field: str) -> None:
    assert field in error_of(with_location(example_spec, location))


def test_a_refusal_never_echoes_the_external_id(example_spec: dict[str, Any]) -> None:
    secret = "not allowed because of spaces 7e1f"
    message = error_of(with_location(example_spec, {"role_arn": "arn:aws:iam::210987654321:role/berth-x",
                                                    "external_id": secret}))
    assert "location.external_id" in message and secret not in message
