"""Secrets by reference: the container's secret environment variables and the login for a private registry.

The spec names each secret by its ARN, never its value: a Secrets Manager secret (whole, or one key of a JSON secret in
ECS's `ARN:JSON_KEY::` form) or an SSM parameter. The instance fetches them with its own instance profile when the
container starts (start_container.sh), so no value passes through berth, its records, its logs, the SSM command or
CloudTrail's record of SendCommand. `registry_credentials` names a Secrets Manager secret holding
`{"username": ..., "password": ...}` for an image outside ECR.

The ARN patterns admit only the characters each service allows in a name, so every reference is inert text in the
shell; start_container.sh checks the same patterns again (it is what checks a CodeDeploy revision's deploy.env).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .fields import StrictModel, anchored

MAX_SECRETS = 50
MAX_SECRET_ARN = 2048
_PARTITION_REGION_ACCOUNT = r"arn:aws(-[a-z]+)*:{service}:[a-z]{{2}}(-[a-z]+)+-[0-9]{{1,2}}:[0-9]{{12}}"
# Secrets Manager names: letters, digits and /_+=.@- (up to 512); ECS's suffix `:JSON_KEY::` picks one key of a JSON
# secret (berth takes no version stage or id: a secret is read at its AWSCURRENT version).
SECRETS_MANAGER_ARN = (_PARTITION_REGION_ACCOUNT.format(service="secretsmanager")
                       + r":secret:[A-Za-z0-9/_+=.@-]{1,512}")
JSON_KEY = r"[A-Za-z0-9_.@-]{1,256}"
# SSM parameter names: letters, digits and _.- in /-separated parts.
SSM_PARAMETER_ARN = _PARTITION_REGION_ACCOUNT.format(service="ssm") + r":parameter(/[A-Za-z0-9_.-]{1,1011})+"
SECRET_REFERENCE = rf"^({SECRETS_MANAGER_ARN}(:{JSON_KEY}::)?|{SSM_PARAMETER_ARN})$"
REGISTRY_CREDENTIALS_ARN = rf"^{SECRETS_MANAGER_ARN}$"
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"

SecretReference = Annotated[str, Field(max_length=MAX_SECRET_ARN, pattern=anchored(SECRET_REFERENCE))]


class SecretReferences(StrictModel):
    """The secrets a container gets in its environment, and the login for its registry, by ARN."""

    secrets: dict[Annotated[str, Field(pattern=anchored(VARIABLE_NAME))], SecretReference] = Field(
        default_factory=dict, max_length=MAX_SECRETS, description=(
            "ENV_NAME -> the ARN of a Secrets Manager secret (ARN:JSON_KEY:: for one key of a JSON secret) or of an "
            "SSM parameter; the instance reads each with its own instance profile when the container starts"))
    registry_credentials: Annotated[str, Field(max_length=MAX_SECRET_ARN,
                                               pattern=anchored(REGISTRY_CREDENTIALS_ARN))] | None = Field(
        default=None, description=(
            "the ARN of a Secrets Manager secret holding {\"username\": ..., \"password\": ...}: the instance logs in "
            "to the image's registry with it before the pull, and out after"))

