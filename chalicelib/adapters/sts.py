"""STS: the credentials of the role a located target names (chalicelib/domain/spec/location.py).

AssumeRole is made with berth's own credentials. The credentials it returns are handed to the clients of that one
place and never stored, logged or put in a record; the external id is never part of a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_call, error_code, error_message
from chalicelib.domain.errors import AwsCallFailed, RoleNotAssumable
from chalicelib.domain.spec.location import LocationSpec

# The shortest session STS grants: a Lambda invocation lasts at most 900 s, and credentials are never kept past it.
SESSION_SECONDS = 900
# Refusals that no retry changes: the role's trust policy, its name, the external id or berth's own policy is wrong.
# Anything else (throttling, a 5xx, the network) is transient: the deployment is looked at again.
TRANSIENT_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
                             "InternalFailure", "InternalError", "IDPCommunicationError"})


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)

    def as_client_arguments(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "aws_session_token": self.session_token}


class RoleAssumer:
    def __init__(self, sts_client: Any) -> None:
        self._sts = sts_client

    def assume(self, location: LocationSpec, session_name: str) -> RoleCredentials:
        """The role's credentials for SESSION_SECONDS. Raises RoleNotAssumable when STS refuses (a configuration
        to fix), AwsCallFailed when it could not answer (looked at again later); both name the role and its account,
        never the external id."""
        params: dict[str, Any] = {"RoleArn": location.role_arn, "RoleSessionName": session_name,
                                  "DurationSeconds": SESSION_SECONDS}
        if location.external_id is not None:
            params["ExternalId"] = location.external_id
        answer = aws_call("STS AssumeRole", self._sts.assume_role,
                          failure=lambda exc: _failure(location, exc), **params)
        credentials = answer["Credentials"]
        return RoleCredentials(credentials["AccessKeyId"], credentials["SecretAccessKey"],
                               credentials["SessionToken"])


def _failure(location: LocationSpec, exc: ClientError | BotoCoreError) -> Exception:
    where = f"role {location.role_arn} in account {location.account}"
    if isinstance(exc, BotoCoreError):
        return AwsCallFailed(f"STS AssumeRole of {where} got no answer ({type(exc).__name__}); trying again later")
    code = error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    said = _without(error_message(exc), location.external_id)
    if code in TRANSIENT_CODES or status >= 500:
        return AwsCallFailed(f"STS AssumeRole of {where} failed with {code}: {said}; trying again later")
    return RoleNotAssumable(
        f"berth cannot assume {where} ({code}: {said}). Check that the role exists, that its trust policy allows "
        "berth's function roles and requires the external id the target's location gives, and that the location's "
        "role_arn is right")


def _without(message: str, secret: str | None) -> str:
    return message.replace(secret, "(external id)") if secret else message
