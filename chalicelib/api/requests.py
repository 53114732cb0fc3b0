"""The REST API's request bodies and query strings. They forbid unknown keys, like the target spec; a body the
model refuses is a 400 naming the field (api/handling.py). `chalicelib.api.models` names them for the routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from chalicelib.api.identity import MAX_CALLER
from chalicelib.domain.audit import AuditFilter
from chalicelib.domain.container_commands import MAX_TAIL, SINCE, since_seconds
from chalicelib.domain.deployment import DeploymentStatus
from chalicelib.domain.errors import InvalidRequest, InvalidRevision
from chalicelib.domain.spec import TARGET_NAME, TargetSpec
from chalicelib.domain.spec.command_args import command_bytes
from chalicelib.domain.spec.fields import Args, check_args

DEPLOYMENT_ID = r"^d-[0-9A-Za-z][0-9A-Za-z-]{0,62}$"
COMMAND_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"    # an SSM command id
EC2_INSTANCE_ID = r"^i-[0-9a-f]{8,17}$"
# The exec command shares the SSM document (64 KB) with the env and run options, which take at most 32 KB.
MAX_EXEC_COMMAND_BYTES = 16 * 1024
MAX_REASON = 500
DIGEST = r"^sha256:[0-9a-f]{64}$"
CALLER = r"^[!-~]+$"        # printable ASCII without spaces: what IAM ARNs and berth's own callers are made of
MIN_TIME, MAX_TIME = datetime(2000, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpecBody(TargetSpec):
    """A target spec whose `target` may be left out: the path names it."""

    target: Annotated[str, Field(pattern=TARGET_NAME)] | None = None  # type: ignore[assignment]

    @field_validator("image", mode="wrap")
    @classmethod
    def _image_error_names_the_field(cls, image: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(image)
        except InvalidRevision as exc:  # the spec's image check raises berth's error; pydantic then knows no field
            raise ValueError(exc.message) from None

    def spec_for(self, name: str) -> TargetSpec:
        if self.target is not None and self.target != name:
            raise InvalidRequest(f"target: the body names {self.target!r} but the path names {name!r}; they must "
                                 "be the same (or leave 'target' out)", field="target")
        return TargetSpec.model_validate({**self.model_dump(exclude_unset=True), "target": name})


class RedeployRequest(_Request):
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="image to deploy; the target's current revision (by digest) when left out")
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    reset_breaker: bool = Field(default=False, description="close an open circuit breaker, then deploy")
    override_freeze: Annotated[str, Field(min_length=1, max_length=MAX_REASON)] | None = Field(
        default=None, description="deploy although the target is frozen; why, kept in the deployment's history")


class PlanRequest(_Request):
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="image to plan for; the target's current revision (by digest) when left out")


class RollbackRequest(_Request):
    to: Annotated[str, Field(pattern=DEPLOYMENT_ID)] | None = Field(
        default=None, description="a succeeded deployment of this target whose revision to deploy again")
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    reset_breaker: bool = False
    override_freeze: Annotated[str, Field(min_length=1, max_length=MAX_REASON)] | None = Field(
        default=None, description="deploy although the target is frozen; why, kept in the deployment's history")


class SyncRequest(_Request):
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    override_freeze: Annotated[str, Field(min_length=1, max_length=MAX_REASON)] | None = Field(
        default=None, description="deploy although the target is frozen; why, kept in the deployment's history")


class FreezeRequest(_Request):
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)] = Field(
        description="why the target is frozen: shown to whoever a freeze refuses or holds")
    until: AwareDatetime | None = Field(
        default=None, description="when the freeze ends on its own (ISO 8601 with a UTC offset); open-ended when "
                                  "left out: `POST /targets/{name}/unfreeze` ends it")

    @field_validator("until")
    @classmethod
    def _in_utc(cls, until: datetime | None) -> datetime | None:
        try:   # an offset that takes year 1 or 9999 out of range would fail every later comparison
            return until.astimezone(UTC) if until is not None else None
        except OverflowError:
            raise ValueError("out of range once converted to UTC") from None


class CancelRequest(_Request):
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None


class HistoryQuery(_Request):
    limit: int = Field(default=20, ge=1, le=100)
    next: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, description="the `next` token of the previous page")


class AuditQuery(_Request):
    """GET /deployments: history across targets. Each filter narrows the answer; none: the last year's deployments."""

    caller: Annotated[str, Field(pattern=CALLER, max_length=MAX_CALLER)] | None = Field(
        default=None, description="who started them: an IAM ARN (or codepipeline-job:<id>), matched exactly")
    digest: Annotated[str, Field(pattern=DIGEST)] | None = Field(
        default=None, description="the image digest they deployed (sha256:<64 hex>)")
    since: datetime | None = Field(default=None, description=(
        "created at or after (ISO 8601; UTC when no offset is given); by time alone, a year back when left out"))
    until: datetime | None = Field(default=None, description="created before (ISO 8601); now when left out")
    target: Annotated[str, Field(pattern=TARGET_NAME)] | None = None
    status: DeploymentStatus | None = None
    limit: int = Field(default=20, ge=1, le=100)
    next: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="the `next` token of the previous page, with the same filters")

    @field_validator("since", "until")
    @classmethod
    def _a_moment_berth_can_compare(cls, moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        try:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("a time between the years 2000 and 2999") from None
        if not MIN_TIME <= moment < MAX_TIME:
            raise ValueError("a time between the years 2000 and 2999")
        return moment

    @model_validator(mode="after")
    def _a_range(self) -> AuditQuery:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidRequest("until: must be later than since", field="until")
        return self

    def audit_filter(self) -> AuditFilter:
        return AuditFilter(caller=self.caller, digest=self.digest, since=self.since, until=self.until,
                           target=self.target, status=self.status)


class LogsQuery(_Request):
    instance: Annotated[str, Field(pattern=EC2_INSTANCE_ID)] | None = Field(
        default=None, description="one instance of the target; every Online one (at most 50) when left out")
    since: Annotated[str, Field(pattern=SINCE)] = Field(
        default="10m", description="how far back: seconds, minutes or hours (30s, 10m, 2h), at most 24h")
    tail: int = Field(default=200, ge=1, le=MAX_TAIL, description="at most this many lines from each instance")

    @field_validator("since")
    @classmethod
    def _at_most_a_day(cls, since: str) -> str:
        since_seconds(since)
        return since


class ExecRequest(_Request):
    command: Args = Field(description="the program and its arguments, run in a one-off container of the target's "
                                      "current image (no shell unless you name one)")
    instance: Annotated[str, Field(pattern=EC2_INSTANCE_ID)] | None = Field(
        default=None, description="the instance to run on; the first Online one when left out")
    all: bool = Field(default=False, description="run on every Online instance of the target (at most 50)")
    timeout_seconds: int = Field(default=600, ge=60, le=3600)

    @field_validator("command")
    @classmethod
    def _command(cls, command: list[str]) -> list[str]:
        check_args(command, "command")
        size = command_bytes(command)
        if size > MAX_EXEC_COMMAND_BYTES:
            raise ValueError(f"the command takes {size} bytes in the SSM command, at most {MAX_EXEC_COMMAND_BYTES}")
        return command

    @model_validator(mode="after")
    def _one_place(self) -> ExecRequest:
        if self.all and self.instance is not None:  # berth's error passes through pydantic, naming the field
            raise InvalidRequest("all: give 'instance' or 'all', not both", field="all")
        return self
