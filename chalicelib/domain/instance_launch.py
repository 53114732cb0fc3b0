"""A new instance, as the two EventBridge events that announce it carry it, parsed once at the edge.

"EC2 Instance State-change Notification" (source aws.ec2, state running) names the instance only. The Auto Scaling
"EC2 Instance-launch Lifecycle Action" (source aws.autoscaling) also names the lifecycle hook that holds the instance
in Pending:Wait, and the token berth completes that action with (chalicelib/services/instance_joins.py). Anything
else, or a field of the wrong shape, is InvalidEvent: it names the field, never echoes the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidEvent
from .spec.instances import INSTANCE_ID

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
# Auto Scaling names: 1-255 characters without ':' (a colon would make the name an ARN); action tokens are UUIDs
# (an identifier, not a credential).
ASG_NAME = r"^[^:\x00-\x1f]{1,255}$"
HOOK_NAME = r"^[A-Za-z0-9\-_/]{1,255}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

InstanceId = Annotated[str, Field(pattern=INSTANCE_ID.replace("(i|mi)", "i"))]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _StateDetail(_Event):
    instance_id: InstanceId = Field(alias="instance-id")
    state: Literal["running"]


class InstanceStateEvent(_Event):
    id: str = Field(min_length=1, max_length=128)
    account: str = Field(default="", pattern=r"^([0-9]{12})?$")    # where the instance is: a member account's
    region: str = Field(default="", max_length=32)                 # events are forwarded to berth's bus
    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Instance State-change Notification"] = Field(alias="detail-type")
    detail: _StateDetail


class LifecycleHook(_Event):
    """The lifecycle action an Auto Scaling group waits on. The token is no secret, but stays out of info logs."""

    group: str = Field(alias="AutoScalingGroupName", pattern=ASG_NAME)
    name: str = Field(alias="LifecycleHookName", pattern=HOOK_NAME)
    token: str = Field(alias="LifecycleActionToken", pattern=UUID_PATTERN, repr=False)


class _LifecycleDetail(LifecycleHook):
    instance_id: InstanceId = Field(alias="EC2InstanceId")
    transition: Literal["autoscaling:EC2_INSTANCE_LAUNCHING"] = Field(alias="LifecycleTransition")


class LifecycleLaunchEvent(_Event):
    id: str = Field(min_length=1, max_length=128)
    account: str = Field(default="", pattern=r"^([0-9]{12})?$")
    region: str = Field(default="", max_length=32)
    source: Literal["aws.autoscaling"]
    detail_type: Literal["EC2 Instance-launch Lifecycle Action"] = Field(alias="detail-type")
    detail: _LifecycleDetail


@dataclass(frozen=True)
class InstanceLaunch:
    """An instance that is running (or held in Pending:Wait by `hook`), and who said so (the event's source)."""

    event_id: str
    instance_id: str
    source: str
    hook: LifecycleHook | None = None
    account: str = ""       # the event's account and region: where the instance is ("" when the event says not)
    region: str = ""


def parse_instance_launch(event: Any) -> InstanceLaunch:
    """The launch an EventBridge event announces. InvalidEvent names every field that is missing or wrong."""
    if not isinstance(event, dict):
        raise InvalidEvent("instance launch: the event is not a JSON object")
    model: type[InstanceStateEvent] | type[LifecycleLaunchEvent] = (
        LifecycleLaunchEvent if event.get("source") == "aws.autoscaling" else InstanceStateEvent)
    try:
        parsed = model.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False))
        raise InvalidEvent(f"{model.__name__} is malformed at: {fields}") from None
    if isinstance(parsed, LifecycleLaunchEvent):
        detail = parsed.detail
        hook = LifecycleHook(AutoScalingGroupName=detail.group, LifecycleHookName=detail.name,
                             LifecycleActionToken=detail.token)
        return InstanceLaunch(parsed.id, detail.instance_id, parsed.source, hook, parsed.account, parsed.region)
    return InstanceLaunch(parsed.id, parsed.detail.instance_id, parsed.source, None, parsed.account, parsed.region)
