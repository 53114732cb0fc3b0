"""The target spec: what berth deploys, where and how. One model serves the pipeline's UserParameters and the REST API.

Unknown keys are errors, never ignored: a misspelt `max_concurency` must not silently deploy at the default.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .errors import InvalidRevision
from .image_ref import ImageRef, parse_image_ref
from .run_options import Args, RunOptions, check_args, command_bytes, run_option_args

TARGET_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
CONTAINER_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
# The names the instance scripts give their own containers beside NAME (NAME-berth-next, the candidate of a swap;
# NAME-berth-proxy, the local proxy) and the backup name of their earlier release: no service may take them, or
# deploying one service would replace another's container.
RESERVED_CONTAINER_SUFFIXES = ("-berth-previous", "-berth-next", "-berth-proxy", "-berth-proxy-next")
INSTANCE_ID = r"^(i|mi)-[0-9a-f]{8,17}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# SSM tag targets: letters, digits, spaces and + - = . _ : / @ (the EC2 tag alphabet), no leading "aws:".
TAG_TEXT = r"^[\w +\-=.:/@]{1,128}$"
PERCENT_OR_COUNT = r"^([1-9][0-9]{0,5}|[1-9][0-9]?%|100%)$"
ERRORS_BUDGET = r"^([0-9]{1,6}|[0-9]{1,2}%|100%)$"
_PORT_MAPPING = re.compile(r"^(?P<host>[0-9]{1,5}):(?P<container>[0-9]{1,5})(?:/(?P<proto>tcp|udp))?\Z")
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]{0,255}\Z")
MAX_ENV_VALUE = 4096
# A spec is stored whole in its target's item and in every deployment record (DynamoDB: 400 KB an item). Its
# serialized JSON is bounded so that the record keeps most of an item for attempts, results and history. Every field
# but `env` is short by its own rules (a spec with all of them at their limits is about 14 KB), so `env` gets most of
# the budget and the error names it.
MAX_SPEC_BYTES = 64 * 1024
MAX_ENV_BYTES = 48 * 1024
# env also travels in the SSM command, `--env 'KEY=VALUE'` quoted for the shell and JSON-encoded, where SSM refuses a
# document over 64 KB (MaxDocumentSizeExceeded) and berth's scripts take about 28 KB: env and the run options
# (run_options.py) share 32 KB of it, health_check.command 2 KB, measured as SendCommand carries them (a value of
# quotes or control characters takes several bytes a character there).
MAX_ENV_COMMAND_BYTES = 32 * 1024
MAX_HEALTH_COMMAND_BYTES = 2 * 1024
# The validation context for specs berth reads back from its own table. Rules added after a record was written must
# not make it unreadable, so the rules checked with `_admitting` apply only to specs coming in (UserParameters,
# PUT /targets): one-character container names, hybrid ids, ports with leading zeros, a health check as long as the
# command, and the size bounds.
STORED: dict[str, Any] = {"berth_stored": True}


def env_command_bytes(env: dict[str, str]) -> int:
    """The bytes env takes in SendCommand's parameters: ` --env ` and the quoted pair, JSON-encoded."""
    return sum(len(json.dumps(" --env " + shlex.quote(f"{key}={value}"))) - 2 for key, value in env.items())


def _admitting(info: ValidationInfo) -> bool:
    return not (isinstance(info.context, dict) and info.context.get("berth_stored"))


def _anchored(pattern: str) -> str:
    r"""The pattern for pydantic's Python `re` engine: `\Z` where `$` would also accept a trailing newline.

    The constants keep `$` so they stay valid JSON Schema (ECMA) patterns for the OpenAPI document.
    """
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern


class _Strict(BaseModel):
    # Python's re compiles these patterns lazily and cheaply; pydantic's default Rust engine spends about 100 ms at
    # import building automata for the Unicode classes, most of a cold start.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, regex_engine="python-re")


def _check_image(cls: type, image: str | None) -> str | None:
    if image is not None:
        parse_image_ref(image)
    return image


TagText = Annotated[str, Field(pattern=_anchored(TAG_TEXT))]


def _not_hybrid(instance_id: Any, info: ValidationInfo) -> Any:
    # Hybrid managed nodes (mi-) are not EC2 instances: berth resolves and checks what it deploys to through EC2.
    if isinstance(instance_id, str) and instance_id.startswith("mi-") and _admitting(info):
        raise ValueError(f"{instance_id!r} is a hybrid managed node: berth deploys to EC2 instance ids (i-...) only, "
                         "because it resolves and checks its targets through EC2")
    return instance_id


class InstancesSpec(_Strict):
    tags: dict[TagText, TagText] | None = None
    ids: list[Annotated[str, BeforeValidator(_not_hybrid), Field(pattern=_anchored(INSTANCE_ID))]] | None = Field(
        default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _exactly_one(self) -> InstancesSpec:
        if (self.tags is None) == (self.ids is None):
            raise ValueError("give exactly one of 'tags' (a tag filter) or 'ids' (at most 50 instance ids)")
        if self.tags is not None and not 1 <= len(self.tags) <= 5:
            raise ValueError("'tags' needs 1 to 5 tag keys (SSM targets take at most 5)")
        if self.tags is not None and any(key.lower().startswith("aws:") for key in self.tags):
            raise ValueError("tag keys starting with 'aws:' are reserved")
        if self.ids is not None and len(set(self.ids)) != len(self.ids):
            raise ValueError("'ids' lists an instance twice")
        return self


class ContainerSpec(RunOptions):
    """The container: its name, ports and environment here; how it runs (command, volumes, limits...) in RunOptions."""

    name: Annotated[str, Field(pattern=_anchored(CONTAINER_NAME), description="Docker container name; it may not end "
                               "in " + ", ".join(RESERVED_CONTAINER_SUFFIXES) + " (berth names its own containers so)")]
    ports: list[str] = Field(default_factory=list, max_length=32)
    env: dict[Annotated[str, Field(pattern=_anchored(ENV_NAME))], str] = Field(default_factory=dict, max_length=128)

    @field_validator("name")
    @classmethod
    def _docker_name(cls, name: str, info: ValidationInfo) -> str:
        if not _admitting(info):
            return name
        if len(name) < 2:
            raise ValueError("container names need two characters at least (Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]+)")
        for suffix in RESERVED_CONTAINER_SUFFIXES:
                if name.endswith(suffix):
                    raise ValueError(f"container names may not end in {suffix!r}: berth names its own containers so")
        return name

    def tcp_host_ports(self) -> set[int]:
        return {int(m.group("host")) for m in map(_PORT_MAPPING.match, self.ports) if m and m.group("proto") != "udp"}

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, ports: list[str], info: ValidationInfo) -> list[str]:
        host_ports: set[tuple[int, str]] = set()
        for mapping in ports:
            match = _PORT_MAPPING.match(mapping)
            if not match:
                raise ValueError(f"port mapping {mapping!r} must be HOST:CONTAINER, optionally with /tcp or /udp")
            if not _admitting(info):
                continue
            for side in ("host", "container"):
                if match.group(side).startswith("0") and match.group(side) != "0":
                    raise ValueError(f"port mapping {mapping!r}: write ports without leading zeros")
                if not 1 <= int(match.group(side)) <= 65535:
                    raise ValueError(f"port mapping {mapping!r}: ports run from 1 to 65535")
            # One host port may be published once per protocol: 53:53/udp and 53:53/tcp are two mappings.
            key = (int(match.group("host")), match.group("proto") or "tcp")
            if key in host_ports:
                raise ValueError(f"port mapping {mapping!r} maps host port {key[0]}/{key[1]} twice")
            host_ports.add(key)
        return ports

    @field_validator("env")
    @classmethod
    def _valid_env_values(cls, env: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key, value in env.items():
            if "\n" in value or "\r" in value or "\x00" in value:
                raise ValueError(f"env {key}: values may not contain newlines or NUL bytes")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"env {key}: value is not valid Unicode text") from None
            if len(value) > MAX_ENV_VALUE:
                raise ValueError(f"env {key}: value longer than {MAX_ENV_VALUE} characters")
        size = _json_size(env) if _admitting(info) else 0
        if size > MAX_ENV_BYTES:
            raise ValueError(f"env is {size} bytes as JSON, at most {MAX_ENV_BYTES}: the spec is stored in one "
                             "DynamoDB item with its deployment's record; keep large values in Parameter Store or "
                             "Secrets Manager and have the container read them")
        in_command = env_command_bytes(env) if _admitting(info) else 0
        if in_command > MAX_ENV_COMMAND_BYTES:
            raise ValueError(f"env takes {in_command} bytes in the SSM command, at most {MAX_ENV_COMMAND_BYTES}: SSM "
                             "refuses a command over 64 KB; keep large values in Parameter Store or Secrets Manager "
                             "and have the container read them")
        return env

    @model_validator(mode="after")
    def _fits_the_command(self, info: ValidationInfo) -> ContainerSpec:
        if self.network == "host" and self.ports:
            raise ValueError("network host: the container binds the host's ports itself; list no ports")
        if not _admitting(info):
            return self
        env_bytes, options_bytes = env_command_bytes(self.env), command_bytes(run_option_args(self))
        if env_bytes + options_bytes > MAX_ENV_COMMAND_BYTES:
            raise ValueError(f"env ({env_bytes} bytes) and the run options ({options_bytes} bytes) take "
                             f"{env_bytes + options_bytes} bytes in the SSM command, at most "
                             f"{MAX_ENV_COMMAND_BYTES}: SSM refuses a command over 64 KB")
        return self


class HealthCheckSpec(_Strict):
    path: str = "/"
    port: int | None = Field(default=None, ge=1, le=65535, description=(
        "probe GET path on the container port this host port maps to; give a port, a command, or both"))
    command: Args | None = Field(default=None, description=(
        "a check run inside the new container (docker exec, no shell unless you name one): exit 0 is healthy"))
    timeout_seconds: int = Field(default=60, ge=1, le=3600)
    interval_seconds: int = Field(default=2, ge=1, le=60)

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: str) -> str:
        if not _HEALTH_PATH.match(path):
            raise ValueError("health check path must start with '/' and hold only URL path characters")
        return path

    @field_validator("command")
    @classmethod
    def _command(cls, command: list[str] | None, info: ValidationInfo) -> list[str] | None:
        check_args(command, "command")
        in_command = command_bytes([arg for each in command or [] for arg in ("--health-cmd", each)])
        if _admitting(info) and in_command > MAX_HEALTH_COMMAND_BYTES:
            raise ValueError(f"the health command takes {in_command} bytes in the SSM command, at most "
                             f"{MAX_HEALTH_COMMAND_BYTES}: run a script of the image instead")
        return command

    @model_validator(mode="after")
    def _port_or_command(self) -> HealthCheckSpec:
        if self.port is None and self.command is None:
            raise ValueError("give a port (an HTTP check), a command (run inside the container) or both")
        return self


CANARY_PERCENT = r"^([1-9][0-9]?|100)%$"
# CloudWatch alarm names: 1 to 255 characters; berth also refuses control characters, which no console shows.
ALARM_NAME = r"^[^\x00-\x1f\x7f]{1,255}$"
MAX_ALARMS = 100                      # DescribeAlarms takes at most 100 AlarmNames a call
MAX_BAKE_SECONDS = 3600


def _canary_size(instances: Any) -> int | str:
    # One rule for both forms, so a refusal names `canary.instances` alone (a union would name each branch).
    if type(instances) is int and 1 <= instances <= 100000:
        return instances
    if isinstance(instances, str) and re.fullmatch(_anchored(CANARY_PERCENT), instances):
        return instances
    raise ValueError('give a count of 1 to 100000 instances or a percent from "1%" to "100%"')


class CanarySpec(_Strict):
    """The first wave: that many instances (or that percent of the fleet, at least one), then a bake."""

    instances: Annotated[int | str, PlainValidator(_canary_size), WithJsonSchema({
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": 100000},
                  {"type": "string", "pattern": CANARY_PERCENT}],
        "description": "instances in the canary wave: a count, or a percent of the fleet rounded down to at least 1"})]
    bake_seconds: StrictInt = Field(default=0, ge=0, le=MAX_BAKE_SECONDS, description=(
        "seconds after the canary wave during which the alarms must stay out of ALARM before the rest is sent"))


def _is_none(value: Any) -> bool:
    return value is None


def _is_zero(value: Any) -> bool:
    return bool(value == 0)


def _is_true(value: Any) -> bool:
    return value is True


def _alarm_names(alarms: Any) -> Any:
    # Checked before the pattern, for a message a person can act on (the pattern stays for the OpenAPI schema).
    if isinstance(alarms, list):
        for index, name in enumerate(alarms):
            if isinstance(name, str) and not re.fullmatch(_anchored(ALARM_NAME), name):
                raise ValueError(f"alarm {index}: CloudWatch alarm names are 1 to 255 characters, with no control "
                                 "characters")
    return alarms


class RolloutSpec(_Strict):
    # A quarter of the fleet at a time, and never the whole of a fleet of two or more whichever way SSM rounds the
    # percent: each host swaps without a gap, but a bad image should not reach every host at once.
    max_concurrency: Annotated[str, Field(pattern=_anchored(PERCENT_OR_COUNT), description=(
        "SSM MaxConcurrency: instances (or percent of them) that deploy at once; \"100%\" is all at once"))] = "25%"
    max_errors: Annotated[str, Field(pattern=_anchored(ERRORS_BUDGET))] = "0"
    timeout_seconds: int = Field(default=3600, ge=60, le=172800)
    # The progressive fields are left out of a dump while unset, so a spec without them reads (in the API, the table
    # and the records) exactly as before they existed.
    canary: CanarySpec | None = Field(default=None, exclude_if=_is_none)
    alarms: Annotated[list[Annotated[str, Field(pattern=_anchored(ALARM_NAME))]] | None,
                      BeforeValidator(_alarm_names)] = Field(
        default=None, min_length=1, max_length=MAX_ALARMS, exclude_if=_is_none, description=(
            "CloudWatch alarm names: any in ALARM before the first wave refuses the deployment; during a wave or a "
            "bake it stops and rolls it back"))
    bake_seconds: StrictInt = Field(default=0, ge=0, le=MAX_BAKE_SECONDS, exclude_if=_is_zero, description=(
        "seconds after the last wave during which the alarms must stay out of ALARM"))
    auto_rollback: StrictBool = Field(default=True, exclude_if=_is_true, description=(
        "roll the instances that got the new revision back to the previous one when a wave fails or an alarm fires"))

    @field_validator("alarms")
    @classmethod
    def _distinct_alarms(cls, alarms: list[str] | None) -> list[str] | None:
        if alarms is not None and len(set(alarms)) != len(alarms):
            raise ValueError("'alarms' names an alarm twice")
        return alarms

    @property
    def in_waves(self) -> bool:
        """A canary or alarms make the rollout run in waves by instance id (domain/rollout.py); otherwise it is one
        SSM command over the whole target."""
        return self.canary is not None or self.alarms is not None


class HookChecks(_Strict):
    """What berth's Lambda lifecycle hook checks before it tells CodeDeploy "Succeeded" (ECS and Lambda platforms)."""

    url: Annotated[str, Field(pattern=_anchored(r"^https?://[^\s]{1,2000}$"))]
    expected_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: int = Field(default=10, ge=1, le=60)
    expect_digest: bool = False     # the response body must name the target's current image digest


class CodeDeploySpec(_Strict):
    application: Annotated[str, Field(min_length=1, max_length=100, pattern=_anchored(r"^[\w.+\-@ ]+$"))]
    deployment_group: Annotated[str, Field(min_length=1, max_length=100, pattern=_anchored(r"^[\w.+\-@ ]+$"))]
    hook_checks: HookChecks | None = None


class RetrySpec(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=10)
    base_seconds: int = Field(default=30, ge=1, le=3600)
    cap_seconds: int = Field(default=900, ge=1, le=86400)


class TargetSpec(_Strict):
    """A deployment target: a named fleet and the container it runs."""

    target: Annotated[str, Field(pattern=_anchored(TARGET_NAME))]
    instances: InstancesSpec
    container: ContainerSpec
    health_check: HealthCheckSpec | None = None
    rollout: RolloutSpec = RolloutSpec()
    retry: RetrySpec = RetrySpec()
    codedeploy: CodeDeploySpec | None = None
    image: str | None = None
    allow_mutable_tags: bool = False

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
        if not _admitting(info):
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
        size = len(spec.model_dump_json().encode())
        if size > MAX_SPEC_BYTES:
            raise ValueError(f"the spec is {size} bytes as JSON, at most {MAX_SPEC_BYTES}: it is stored in one "
                             "DynamoDB item with its deployment's record")
        return spec

    def image_ref(self) -> ImageRef | None:
        return parse_image_ref(self.image) if self.image else None


class TargetReference(_Strict):
    """UserParameters that name a target berth already knows."""

    target: Annotated[str, Field(pattern=_anchored(TARGET_NAME))]
    image: str | None = None

    _valid_image = field_validator("image")(_check_image)


PipelineParameters = TargetSpec | TargetReference


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def parse_pipeline_parameters(raw: str | None, context: dict[str, Any] | None = None) -> PipelineParameters:
    """UserParameters JSON → a full spec (to store under its name) or a reference to a stored one."""
    if raw is None or not raw.strip():
        raise InvalidRevision(
            'UserParameters are missing: set them on the pipeline action, e.g. {"target": "web-prod"} '
            "or a whole target spec (see the README's configuration table)"
        )
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRevision(
            f"UserParameters are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidRevision("UserParameters are not valid JSON: nested too deeply") from None
    except ValueError:  # Python reads integers of at most 4300 digits
        raise InvalidRevision("UserParameters are not valid JSON: a number of more than 4300 digits") from None
    if not isinstance(data, dict):
        raise InvalidRevision("UserParameters must be a JSON object such as {\"target\": \"web-prod\"}")
    reference_only = set(data) <= {"target", "image"}
    model: type[TargetSpec] | type[TargetReference] = TargetReference if reference_only else TargetSpec
    parsed: PipelineParameters = parse_model(model, data, "UserParameters", context)
    return parsed


def parse_model(model: type[Any], data: Any, what: str, context: dict[str, Any] | None = None) -> Any:
    """Validate `data` as `model`, turning pydantic's errors into one InvalidRevision that names every bad field.

    Input values are left out of the message: an env value may be a credential.
    """
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise InvalidRevision(f"{what} are not valid: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; unknown keys are not ignored)"
        problems.append(f"{location}: {message}")
    return "; ".join(problems)


Trigger = Literal["pipeline", "api", "retry", "rollback"]
