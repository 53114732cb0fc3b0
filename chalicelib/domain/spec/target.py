"""The target spec: what berth deploys, where and how. One model serves the pipeline's UserParameters and the REST API.

Unknown keys are errors, never ignored: a misspelt `max_concurency` must not silently deploy at the default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, ValidationInfo, field_validator, model_validator

from ..image_ref import ImageRef, parse_image_ref
from .command_args import command_bytes
from .container import MAX_ENV_COMMAND_BYTES, ContainerSpec, HealthCheckSpec
from .fields import StrictModel, admitting, anchored
from .instances import InstancesSpec
from .load_balancer import LoadBalancerSpec
from .location import LocationSpec
from .release import ReleaseSpec
from .rollout import RolloutSpec

TARGET_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
# A spec is stored whole in its target's item and in every deployment record (DynamoDB: 400 KB an item). Its
# serialized JSON is bounded so that the record keeps most of an item for attempts, results and history; `env` has
# most of the budget (MAX_ENV_BYTES, container.py) and the run options 12 KB (run_options.py).
MAX_SPEC_BYTES = 64 * 1024

# What started a deployment. "sync" brings the instances a deployment left behind to the target's revision, "join" a
# new instance; both go to named instances only (TargetSpec.on_instances), as one command, never in waves.
Trigger = Literal["pipeline", "api", "retry", "rollback", "sync", "join"]
ONE_COMMAND_TRIGGERS = frozenset({"rollback", "sync", "join"})


def _check_image(cls: type, image: str | None) -> str | None:
    if image is not None:
        parse_image_ref(image)
    return image


class HookChecks(StrictModel):
    """What berth's Lambda lifecycle hook checks before it tells CodeDeploy "Succeeded" (ECS and Lambda platforms)."""

    url: Annotated[str, Field(pattern=anchored(r"^https?://[^\s]{1,2000}$"))]
    expected_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: int = Field(default=10, ge=1, le=60)
    expect_digest: bool = False     # the response body must name the target's current image digest


class CodeDeploySpec(StrictModel):
    application: Annotated[str, Field(min_length=1, max_length=100, pattern=anchored(r"^[\w.+\-@ ]+$"))]
    deployment_group: Annotated[str, Field(min_length=1, max_length=100, pattern=anchored(r"^[\w.+\-@ ]+$"))]
    hook_checks: HookChecks | None = None


class RetrySpec(StrictModel):
    max_attempts: int = Field(default=3, ge=1, le=10)
    base_seconds: int = Field(default=30, ge=1, le=3600)
    cap_seconds: int = Field(default=900, ge=1, le=86400)


class ImagePolicy(StrictModel):
    """What an ECR image's scan must show before berth deploys it (ECR DescribeImageScanFindings)."""

    max_severity: Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"] = Field(description=(
        "findings of this severity or graver refuse the image; the image needs a complete scan"))


class TargetSpec(StrictModel):
    """A deployment target: a named fleet and the container it runs."""

    target: Annotated[str, Field(pattern=anchored(TARGET_NAME))]
    instances: InstancesSpec
    container: ContainerSpec
    health_check: HealthCheckSpec | None = None
    rollout: RolloutSpec = RolloutSpec()
    retry: RetrySpec = RetrySpec()
    codedeploy: CodeDeploySpec | None = None
    image: str | None = None
    allow_mutable_tags: bool = False
    # Left out of a dump while unset, so a spec without it reads as before it existed.
    load_balancer: LoadBalancerSpec | None = Field(default=None, exclude_if=lambda value: value is None)
    image_policy: ImagePolicy | None = None
    # Left out of a dump while unset, like load_balancer: a target in berth's own account reads as before.
    location: LocationSpec | None = Field(default=None, exclude_if=lambda value: value is None)
    # A one-off run of the new image before any swap (domain/spec/release.py); left out of a dump while unset.
    release: ReleaseSpec | None = Field(default=None, exclude_if=lambda value: value is None)

    _valid_image = field_validator("image")(_check_image)

    @model_validator(mode="wrap")
    @classmethod
    def _fits_an_item(cls, data: Any, handler: ModelWrapValidatorHandler[TargetSpec],
                      info: ValidationInfo) -> TargetSpec:
        # Checked on input only: an instance was checked when it was built (or loaded as STORED), and a response model
        # that holds a stored spec must not refuse it.
        if isinstance(data, TargetSpec):
            return handler(data)
        spec = handler(data)
        if not admitting(info):
            return spec
        health, rollout = spec.health_check, spec.rollout
        if health is not None and health.timeout_seconds >= rollout.timeout_seconds:
            raise ValueError(
                f"health_check.timeout_seconds ({health.timeout_seconds}) must be shorter than "
                f"rollout.timeout_seconds ({rollout.timeout_seconds}), the SSM command's execution timeout that the "
                "pull, the start and the health check all run within")
        if health is not None and health.port is not None and health.port not in spec.container.tcp_host_ports():
            raise ValueError(f"health_check.port {health.port} must be the host side of a TCP mapping in "
                             "container.ports: the check reaches the new container through one of its ports")
        if spec.load_balancer is not None and spec.load_balancer_port() is None:
            raise ValueError(
                "load_balancer: berth registers each instance with the container's host port and cannot tell which: "
                "give health_check.port, or exactly one TCP mapping in container.ports "
                f"(found {len(spec.container.tcp_host_ports())})")
        if spec.release is not None and spec.codedeploy is not None:
            raise ValueError("release: a target deployed through CodeDeploy runs its appspec's hooks, not berth's "
                             "release task; run the task from a BeforeInstall hook of the appspec, or leave "
                             "codedeploy out")
        if spec.release is not None:
            # The task travels with what the container's run travels with (its env, run options and secrets) in one
            # SSM command: together they keep to the container's budget, so the task's command fits SSM's 64 KB.
            together = spec.container.command_budget_bytes() + command_bytes(list(spec.release.command))
            if together > MAX_ENV_COMMAND_BYTES:
                raise ValueError(f"release: the command and the container's env, run options and secrets take "
                                 f"{together} bytes in the release task's SSM command, at most "
                                 f"{MAX_ENV_COMMAND_BYTES}: SSM refuses a command over 64 KB")
        size = len(spec.model_dump_json().encode())
        if size > MAX_SPEC_BYTES:
            raise ValueError(f"the spec is {size} bytes as JSON, at most {MAX_SPEC_BYTES}: it is stored in one "
                             "DynamoDB item with its deployment's record")
        return spec

    @property
    def in_waves(self) -> bool:
        """A canary, alarms or a load balancer make the rollout run in waves by instance id (domain/rollout.py);
        otherwise it is one SSM command over the whole target."""
        return self.rollout.in_waves or self.load_balancer is not None

    def load_balancer_port(self) -> int | None:
        """The port each instance is registered with in the target groups: the health check's port when given (the
        port the service answers on), otherwise the one TCP host port; None when neither says."""
        if self.health_check is not None and self.health_check.port is not None:
            return self.health_check.port
        ports = self.container.tcp_host_ports()
        return next(iter(ports)) if len(ports) == 1 else None

    def image_ref(self) -> ImageRef | None:
        return parse_image_ref(self.image) if self.image else None

    def on_instances(self, instance_ids: list[str]) -> TargetSpec:
        """The same target sent to these instances only (at most 50, SendCommand's InstanceIds bound): a sync of the
        instances a deployment left behind, or a new instance joining."""
        return self.model_copy(update={"instances": InstancesSpec(ids=sorted(set(instance_ids)))})


class TargetReference(StrictModel):
    """UserParameters that name a target berth already knows."""

    target: Annotated[str, Field(pattern=anchored(TARGET_NAME))]
    image: str | None = None

    _valid_image = field_validator("image")(_check_image)


PipelineParameters = TargetSpec | TargetReference
