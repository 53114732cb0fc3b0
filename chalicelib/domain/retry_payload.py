"""What a retry schedule carries: one typed payload per kind, told apart by `kind`.

berth writes the payload into an EventBridge Scheduler one-time schedule (its target's Input) and reads it back in the
retry_deployment Lambda, once, into one of these models. The JSON is the wire shape schedules already created in AWS
carry, so it must not change:

    {"kind": "ssm", "deployment_id": "d-...", "attempt": 2}
    {"kind": "codedeploy", "deployment_id": "d-ABC...", "attempt": 2}                (a remediation wait adds "wait": n)
    {"kind": "pipeline", "pipeline": "...", "stage": "...", "execution_id": "<uuid>", "attempt": 1}
    {"kind": "look", "deployment_id": "d-...", "wave": 1, "phase": "BAKING", "at": 1795777260}
    {"kind": "join", "instance_id": "i-...", "launch": <epoch seconds>, "attempt": 3}   (a new instance's look 3)

`attempt` is the number of the attempt the schedule starts (SSM, CodeDeploy) or the stage's retry number (pipeline).
A look is no retry: it refreshes a rollout in waves that waits in `phase` of `wave` (a bake, a halt) when nothing else
would (services/looks.py); `at` is the moment it was asked for (epoch seconds), which names its schedule.
Unknown keys are ignored, as they always were.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from .errors import InvalidEvent
from .retry import schedule_name

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PIPELINE_NAME = r"^[A-Za-z0-9.@\-_]{1,100}$"
KINDS = ("ssm", "codedeploy", "pipeline", "look", "join")
PHASE = r"^[A-Z_]{1,32}$"


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str

    def wire(self) -> dict[str, Any]:
        """The schedule's Input: `kind` first, then every field that differs from its default, in the order berth has
        always written them."""
        return {"kind": self.kind, **self.model_dump(exclude_defaults=True)}


class SsmRetry(_Task):
    """Send attempt `attempt` of berth's own deployment `deployment_id`."""

    kind: Literal["ssm"] = "ssm"
    deployment_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(ge=1, le=100)


class CodeDeployRetry(_Task):
    """Create CodeDeploy deployment `deployment_id` again as attempt `attempt`, once its remediation is over;
    `wait` counts the times the retry has waited for it."""

    kind: Literal["codedeploy"] = "codedeploy"
    deployment_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(ge=1, le=100)
    wait: int = Field(default=0, ge=0, le=100)

    def waited(self) -> CodeDeployRetry:
        return self.model_copy(update={"wait": self.wait + 1})


class PipelineStageRetry(_Task):
    """Retry the failed actions of `stage` in `execution_id` of `pipeline`; `attempt` is the stage's retry number."""

    kind: Literal["pipeline"] = "pipeline"
    pipeline: str = Field(pattern=PIPELINE_NAME)
    stage: str = Field(pattern=PIPELINE_NAME)
    execution_id: str = Field(pattern=UUID)
    attempt: int = Field(ge=1, le=100)


class LookAgain(_Task):
    """Refresh berth's deployment `deployment_id` if its rollout still waits in `phase` of `wave`."""

    kind: Literal["look"] = "look"
    deployment_id: str = Field(min_length=1, max_length=128)
    wave: int = Field(ge=1, le=100000)
    phase: str = Field(pattern=PHASE)
    at: int = Field(ge=0)

    def schedule_name(self) -> str:
        """Deterministic: a second refresh asking for the same look finds its name taken (already scheduled)."""
        return schedule_name(f"look-{self.deployment_id}-{self.phase.lower()}-{self.at}", self.wave)


class JoinLook(_Task):
    """Look again at new instance `instance_id` (launched at epoch second `launch`): is SSM seeing it Online, is its
    target free, is its deployment over? `attempt` is the look's number; a look of another launch is stale."""

    kind: Literal["join"] = "join"
    instance_id: str = Field(pattern=r"^i-[0-9a-f]{8,17}$")
    launch: int = Field(ge=0, le=2**40)
    attempt: int = Field(ge=1, le=200)


# The retries of a failure: each starts an attempt (or a stage's retry) numbered `attempt`.
FailureRetry = SsmRetry | CodeDeployRetry | PipelineStageRetry
RetryTask = Annotated[SsmRetry | CodeDeployRetry | PipelineStageRetry | LookAgain | JoinLook,
                     Field(discriminator="kind")]


class RetryPayload(RootModel[RetryTask]):
    """A retry schedule's payload, whatever its kind: `.root` is the typed task."""

    model_config = ConfigDict(frozen=True)


def parse_retry_payload(payload: Any) -> SsmRetry | CodeDeployRetry | PipelineStageRetry | LookAgain | JoinLook:
    """The task a schedule carries. InvalidEvent names every field that is missing or wrong."""
    if not isinstance(payload, dict):
        raise InvalidEvent("retry payload: the event is not a JSON object")
    try:
        return RetryPayload.model_validate(payload).root
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        if any(error["type"] in ("union_tag_not_found", "union_tag_invalid") for error in errors):
            raise InvalidEvent(f"retry payload is malformed at: kind (one of {', '.join(KINDS)})") from None
        # The first element of a location is the kind the payload was checked as.
        fields = ", ".join(f"{'.'.join(str(p) for p in error['loc'][1:])} ({error['msg']})" for error in errors)
        raise InvalidEvent(f"retry payload of kind {payload.get('kind')} is malformed at: {fields}") from None
