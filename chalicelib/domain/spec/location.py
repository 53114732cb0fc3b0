"""Where a target lives when it is not in berth's own account and region: an IAM role berth assumes, and a region.

Every EC2, SSM, ECR, ELB and CloudWatch call for such a target is made with the role's credentials in that region;
berth's records, locks and retries stay in its own account. The role's name must start with `berth-`: berth's own
policy allows sts:AssumeRole on `role/berth-*` in any account and nothing else, so a spec cannot make berth assume an
unrelated role (docs/accounts.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from .fields import StrictModel, anchored

# An IAM role ARN without a path whose name starts with `berth-` (IAM role names: 1 to 64 of [\w+=,.@-]).
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/berth-[\w+=,.@-]{1,58}$"
# STS AssumeRole ExternalId: 2 to 1,224 of [\w+=,.@:/-].
EXTERNAL_ID = r"^[\w+=,.@:/-]{2,1224}$"
REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"


class LocationSpec(StrictModel):
    role_arn: Annotated[str, Field(pattern=anchored(ROLE_ARN), description=(
        "the role berth assumes for every call about this target; its name starts with berth-"))]
    external_id: str | None = Field(default=None, pattern=anchored(EXTERNAL_ID), description=(
        "the external id the role's trust policy requires; never logged"))
    region: str | None = Field(default=None, pattern=anchored(REGION), description=(
        "the target's region; berth's own region when absent"))

    @property
    def account(self) -> str:
        """The 12-digit account the role belongs to."""
        return self.role_arn.split(":")[4]


@dataclass(frozen=True)
class Home:
    """berth's own account and region: where a target without a location lives. `account` is empty when berth was
    not told it (BERTH_ACCOUNT_ID): then an event of any account that is not a located target's counts as home."""

    account: str
    region: str


def place_of(location: LocationSpec | None, home: Home) -> tuple[str, str]:
    """The (account, region) a target lives in."""
    if location is None:
        return home.account, home.region
    return location.account, location.region or home.region


def lives_in(location: LocationSpec | None, account: str, region: str, home: Home) -> bool:
    """Whether a target at `location` is in the account and region an event came from. A target without a location
    takes every event of berth's own account (any account while `home.account` is not known), whatever its region,
    as before locations existed: an EventBridge rule receives its own region's events unless they are forwarded. A
    located target takes only its own account's and region's. An event that does not say (an empty field) is taken
    to come from berth's own account and region."""
    account = account or home.account
    if location is None:
        return not home.account or account == home.account
    target_account, target_region = place_of(location, home)
    return account == target_account and (region or home.region) == target_region
