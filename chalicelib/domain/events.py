"""EventBridge events berth listens to, and CodeDeploy's Lambda hook event, parsed once at the edge (a retry
schedule's payload is chalicelib.domain.retry_payload)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidEvent

M = TypeVar("M", bound=BaseModel)


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class CodeDeployDetail(_Event):
    deployment_id: str = Field(alias="deploymentId", min_length=1, max_length=64)
    application: str = Field(min_length=1)
    deployment_group: str = Field(alias="deploymentGroup", min_length=1)
    state: str = Field(min_length=1, max_length=32)
    instance_id: str | None = Field(default=None, alias="instanceId", max_length=256)
    region: str = ""


class CodeDeployEvent(_Event):
    id: str = Field(min_length=1, max_length=128)     # kept in the record (the latest 200): bounded
    detail_type: str = Field(alias="detail-type")
    time: str = ""
    account: str = Field(default="", max_length=12)
    detail: CodeDeployDetail

    @property
    def is_instance_event(self) -> bool:
        return self.detail_type == "CodeDeploy Instance State-change Notification"


class SsmCommandDetail(_Event):
    command_id: str = Field(alias="command-id", min_length=1)
    status: str
    document_name: str = Field(default="", alias="document-name")


class SsmCommandEvent(_Event):
    id: str
    account: str = Field(default="", max_length=12)   # where the command ran: a member account's are forwarded
    region: str = Field(default="", max_length=32)
    detail: SsmCommandDetail


class PipelineActionDetail(_Event):
    pipeline: str = Field(pattern=r"^[A-Za-z0-9.@\-_]{1,100}$")
    execution_id: str = Field(alias="execution-id", min_length=1, max_length=200)
    stage: str = Field(pattern=r"^[A-Za-z0-9.@\-_]{1,100}$")
    action: str = ""
    state: str


class PipelineActionEvent(_Event):
    id: str
    detail: PipelineActionDetail


class LifecycleHookEvent(_Event):
    deployment_id: str = Field(alias="DeploymentId", min_length=1)
    hook_execution_id: str = Field(alias="LifecycleEventHookExecutionId", min_length=1)


def parse_event(model: type[M], event: Any) -> M:
    if not isinstance(event, dict):
        raise InvalidEvent(f"{model.__name__}: the event is not a JSON object")
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False))
        raise InvalidEvent(f"{model.__name__} is malformed at: {fields}") from None

