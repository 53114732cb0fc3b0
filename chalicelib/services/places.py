"""Where a target's AWS calls are made: berth's own account and region, or the place its `location` names.

A target with a `location` is reached through a role in its own account (LocationSpec): every EC2, SSM, ELB,
CloudWatch and Auto Scaling call about it is made with that role's credentials, in its region. Records, locks,
retries, schedules, berth's own events and ECR stay with berth's own credentials.

The composition root (chalicelib/wiring.py) hands a service its home gateways, as before, and one `Located`
factory that builds the five gateways of a place. `Placed` puts the two together for one kind of gateway: a
service asks it for the gateway of a deployment or a spec, and gets the home one whenever the target has no
location, so a target in berth's own account makes exactly the calls it made before (and no STS call). A located
gateway's clients assume the role only when their first call is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from chalicelib.domain.errors import AwsCallFailed

if TYPE_CHECKING:
    from chalicelib.adapters.autoscaling import LifecycleActions
    from chalicelib.adapters.cloudwatch import AlarmWatch
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.adapters.elbv2 import TargetGroups
    from chalicelib.adapters.ssm import SsmGateway
    from chalicelib.domain.deployment import Deployment
    from chalicelib.domain.spec import TargetSpec
    from chalicelib.domain.spec.location import LocationSpec

G = TypeVar("G")

# STS RoleSessionName: 2 to 64 characters; deployment ids, target names and instance ids fit its alphabet.
SESSION_NAME_LIMIT = 64


@dataclass(frozen=True)
class TargetAws:
    """The gateways a target's calls go through, in one account and region."""

    ssm: SsmGateway
    instances: InstanceDirectory
    alarms: AlarmWatch
    groups: TargetGroups
    lifecycle: LifecycleActions


Located = Callable[["LocationSpec", str], TargetAws]   # (location, session name) -> that place's gateways


def session_name(about: str) -> str:
    """The RoleSessionName berth assumes a target's role with: `berth-<deployment id>` (or the target's name, or a
    joining instance's id, when no deployment exists yet), as CloudTrail shows it in the member account."""
    return f"berth-{about}"[:SESSION_NAME_LIMIT]


class Placed(Generic[G]):
    """One kind of gateway, at home or at a located target's place."""

    def __init__(self, home: G, located: Located | None, pick: Callable[[TargetAws], G]) -> None:
        self._home = home
        self._located = located
        self._pick = pick

    @property
    def home(self) -> G:
        return self._home

    def at(self, location: LocationSpec | None, about: str) -> G:
        if location is None:
            return self._home
        if self._located is None:
            raise AwsCallFailed(f"target in account {location.account}: this service was built without access to "
                                "other accounts")
        return self._pick(self._located(location, session_name(about)))

    def of(self, deployment: Deployment) -> G:
        return self.at(deployment.spec.location, deployment.deployment_id)

    def of_spec(self, spec: TargetSpec) -> G:
        return self.at(spec.location, spec.target)


def placed_ssm(home: SsmGateway, located: Located | None) -> Placed[SsmGateway]:
    return Placed(home, located, lambda aws: aws.ssm)


def placed_instances(home: InstanceDirectory, located: Located | None) -> Placed[InstanceDirectory]:
    return Placed(home, located, lambda aws: aws.instances)


def placed_alarms(home: AlarmWatch, located: Located | None) -> Placed[AlarmWatch]:
    return Placed(home, located, lambda aws: aws.alarms)


def placed_groups(home: TargetGroups, located: Located | None) -> Placed[TargetGroups]:
    return Placed(home, located, lambda aws: aws.groups)


def placed_lifecycle(home: LifecycleActions, located: Located | None) -> Placed[LifecycleActions]:
    return Placed(home, located, lambda aws: aws.lifecycle)
