"""aws_call, the one place botocore's errors become berth's, on a real botocore client: AWS's error answers come from
botocore's Stubber (parameters validated against DynamoDB's service model), network failures from a `before-send`
handler, so every error is the one botocore itself raises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from chalicelib.adapters.errors import CONDITION_FAILED, aws_call, raising, returning
from chalicelib.domain.errors import AwsCallFailed, CallUnanswered, Conflict

PUT = {"TableName": "berth-test", "Item": {"pk": {"S": "CLAIM#x"}, "sk": {"S": "CLAIM"}},
       "ConditionExpression": "attribute_not_exists(pk)"}


@pytest.fixture
def dynamodb() -> Any:
    session = botocore.session.get_session()
    return session.create_client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                                 aws_secret_access_key="testing",
                                 config=Config(retries={"mode": "standard", "max_attempts": 1}))


@pytest.fixture
def stub(dynamodb: Any) -> Iterator[Stubber]:
    with Stubber(dynamodb) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def refused(stub: Stubber, code: str, status: int = 400, message: str = "refused") -> None:
    stub.add_client_error("put_item", service_error_code=code, service_message=message, http_status_code=status,
                          expected_params=PUT)


def test_an_answer_is_returned_as_aws_gave_it(dynamodb: Any, stub: Stubber) -> None:
    stub.add_response("put_item", {"ConsumedCapacity": {"TableName": "berth-test"}}, PUT)
    assert aws_call("DynamoDB PutItem", dynamodb.put_item, **PUT) == {"ConsumedCapacity": {"TableName": "berth-test"}}


def test_an_unexpected_error_names_the_operation_and_awss_code(dynamodb: Any, stub: Stubber) -> None:
    refused(stub, "ThrottlingException", message="slow down")
    with pytest.raises(AwsCallFailed) as caught:
        aws_call("DynamoDB PutItem (claim)", dynamodb.put_item, expected={CONDITION_FAILED: returning(None)}, **PUT)
    assert caught.value.message == "DynamoDB PutItem (claim) failed with ThrottlingException: slow down"
    assert not isinstance(caught.value, CallUnanswered) and isinstance(caught.value.__cause__, ClientError)


def test_an_expected_code_is_the_value_its_handler_gives(dynamodb: Any, stub: Stubber) -> None:
    refused(stub, CONDITION_FAILED)
    assert aws_call("DynamoDB PutItem", dynamodb.put_item, expected={CONDITION_FAILED: returning(False)}, **PUT) \
        is False


def test_an_expected_code_may_be_one_of_berths_errors_in_place_of_botocores(dynamodb: Any, stub: Stubber) -> None:
    refused(stub, CONDITION_FAILED, message="The conditional request failed")
    taken = raising(lambda exc: Conflict(f"claimed already ({exc.response['Error']['Message']})"))
    with pytest.raises(Conflict, match=r"claimed already \(The conditional request failed\)") as caught:
        aws_call("DynamoDB PutItem", dynamodb.put_item, expected={CONDITION_FAILED: taken}, **PUT)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_error_code_is_found_under_its_family(dynamodb: Any, stub: Stubber) -> None:
    refused(stub, "InvalidInstanceID.NotFound")
    assert aws_call("EC2 DescribeInstances", dynamodb.put_item, expected={"InvalidInstanceID": returning("unknown")},
                    **PUT) == "unknown"


@pytest.mark.parametrize("may_have_run", [False, True])
def test_a_5xx_is_unanswered_only_for_a_call_that_may_have_run(dynamodb: Any, stub: Stubber,
                                                               may_have_run: bool) -> None:
    refused(stub, "InternalServerError", status=500)
    with pytest.raises(AwsCallFailed) as caught:
        aws_call("DynamoDB PutItem", dynamodb.put_item, may_have_run=may_have_run, **PUT)
    assert isinstance(caught.value, CallUnanswered) is may_have_run
    assert caught.value.message == ("DynamoDB PutItem got no usable answer: InternalServerError (HTTP 500)"
                                    if may_have_run else "DynamoDB PutItem failed with InternalServerError: refused")


def test_a_4xx_proves_nothing_ran_even_for_a_call_that_may_have_run(dynamodb: Any, stub: Stubber) -> None:
    refused(stub, "ValidationException")
    with pytest.raises(AwsCallFailed) as caught:
        aws_call("SSM SendCommand", dynamodb.put_item, may_have_run=True, **PUT)
    assert not isinstance(caught.value, CallUnanswered)


def network_fails(client: Any, error: Exception) -> None:
    def fail(**_: Any) -> None:
        raise error

    client.meta.events.register("before-send.dynamodb.PutItem", fail)


@pytest.mark.parametrize("error", [ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
                                   EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")],
                         ids=["read-timeout", "no-connection"])
def test_a_network_failure(dynamodb: Any, error: Exception) -> None:
    network_fails(dynamodb, error)
    with pytest.raises(AwsCallFailed) as failed:
        aws_call("DynamoDB PutItem", dynamodb.put_item, **PUT)
    assert failed.value.message == f"DynamoDB PutItem failed: {type(error).__name__}"
    assert not isinstance(failed.value, CallUnanswered)

    with pytest.raises(CallUnanswered, match=f"SSM SendCommand got no answer: {type(error).__name__}"):
        aws_call("SSM SendCommand", dynamodb.put_item, may_have_run=True, **PUT)


def test_failure_replaces_every_error_the_call_did_not_expect(dynamodb: Any, stub: Stubber) -> None:
    refused(stub, "AccessDenied")
    refused(stub, CONDITION_FAILED)

    def unreadable(exc: Exception) -> Exception:
        return LookupError(f"unreadable: {type(exc).__name__}")

    with pytest.raises(LookupError, match="unreadable: ClientError"):
        aws_call("S3 GetObject", dynamodb.put_item, failure=unreadable, **PUT)
    assert aws_call("S3 GetObject", dynamodb.put_item, failure=unreadable,
                    expected={CONDITION_FAILED: returning(None)}, **PUT) is None
