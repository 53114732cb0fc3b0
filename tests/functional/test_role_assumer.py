"""The STS adapter (chalicelib/adapters/sts.py) on the embedded AWS: what it sends, and what STS's refusals become.
A refusal is answered by botocore's `before-call` hook after botocore has validated the parameters against STS's
model, as STS would answer it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.adapters.sts import SESSION_SECONDS, RoleAssumer
from chalicelib.clients import client
from chalicelib.domain.errors import AwsCallFailed, RoleNotAssumable
from chalicelib.domain.spec.location import LocationSpec
from tests.conftest import World

ROLE = "arn:aws:iam::210987654321:role/berth-target"
EXTERNAL_ID = "ext-5b0e7d11c2"
LOCATION = LocationSpec(role_arn=ROLE, external_id=EXTERNAL_ID, region="eu-west-1")


def sts_answering(code: str | None, status: int, message: str = "") -> tuple[Any, list[dict[str, Any]]]:
    sts = client("sts", "us-east-1", single_attempt=True)   # botocore's own retries would only slow the test
    sent: list[dict[str, Any]] = []

    def answer(params: dict[str, Any], **_: Any) -> Any:
        sent.append(params["body"])
        if code is None:
            return None
        return (AWSResponse("https://sts.amazonaws.com", status, {}, None),
                {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}})

    sts.meta.events.register("before-call.sts.AssumeRole", answer)
    return sts, sent


def test_assume_role_sends_the_session_the_external_id_and_900_seconds(aws: World) -> None:
    sts, sent = sts_answering(None, 200)
    credentials = RoleAssumer(sts).assume(LOCATION, "berth-d-1")
    assert sent[0]["RoleArn"] == ROLE and sent[0]["RoleSessionName"] == "berth-d-1"
    assert sent[0]["ExternalId"] == EXTERNAL_ID and sent[0]["DurationSeconds"] == SESSION_SECONDS == 900
    assert credentials.access_key_id and credentials.session_token
    assert credentials.secret_access_key not in repr(credentials)


def test_no_external_id_is_sent_when_the_location_has_none(aws: World) -> None:
    sts, sent = sts_answering(None, 200)
    RoleAssumer(sts).assume(LocationSpec(role_arn=ROLE), "berth-web")
    assert "ExternalId" not in sent[0]


def test_access_denied_is_a_configuration_error_naming_role_and_account_not_the_external_id(aws: World) -> None:
    sts, _ = sts_answering("AccessDenied", 403, f"User: arn:aws:sts::123456789012:assumed-role/berth-dev/x is not "
                                                f"authorized to perform: sts:AssumeRole on resource: {ROLE} "
                                                f"(external id {EXTERNAL_ID})")
    with pytest.raises(RoleNotAssumable) as refused:
        RoleAssumer(sts).assume(LOCATION, "berth-d-1")
    assert ROLE in refused.value.message and "account 210987654321" in refused.value.message
    assert "AccessDenied" in refused.value.message and EXTERNAL_ID not in refused.value.message


@pytest.mark.parametrize(("code", "status"), [("Throttling", 400), ("InternalFailure", 500),
                                              ("ServiceUnavailable", 503)])
def test_throttling_and_5xx_are_transient(aws: World, code: str, status: int) -> None:
    sts, _ = sts_answering(code, status, "Rate exceeded")
    with pytest.raises(AwsCallFailed) as failed:
        RoleAssumer(sts).assume(LOCATION, "berth-d-1")
    assert not isinstance(failed.value, RoleNotAssumable)
    assert ROLE in failed.value.message and EXTERNAL_ID not in failed.value.message
