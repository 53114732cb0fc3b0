"""How a target's container runs: command, volumes, limits, logs, network, restart policy and the rest.

`RunOptions` holds the fields; `ContainerSpec` (container.py) inherits them. Each value reaches `docker run` as one
argument in its `--option=value` form (`run_option_args`, command_args.py), so no value can become an option of its
own, and a value is validated here first, before the Lambda sends anything, and again by start_container.sh on the
instance, which is what checks a CodeDeploy revision's deploy.env.

Whatever widens what a container can do to its host (`privileged`, `devices`, `cap_add`, `pid: host`, a volume of
the Docker socket or of the host's system directories, host_paths.py) is refused unless the spec says
`"privileged": true`, and the refusal names the field. `privileged: true` runs the container with `--privileged`, as
Docker's and ECS's flag of that name does, and admits the others.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .fields import Args, StrictModel, admitting, anchored, check_args, json_bytes, plain_text, refuse_repeats
from .host_paths import host_path_widens, is_normal_path, parse_volume

# The run options together, as JSON: with env's budget they keep a spec inside MAX_SPEC_BYTES (target.py).
MAX_RUN_OPTIONS_BYTES = 12 * 1024
# Docker refuses a memory limit under 6 MiB.
MIN_MEMORY_BYTES = 6 * 1024 * 1024
SIZE = r"^[1-9][0-9]{0,6}[bkmg]$"
_SIZE_UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_NAME_OR_ID = r"([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10})"
USER = rf"^{_NAME_OR_ID}(:{_NAME_OR_ID})?$"
NETWORK_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
RESTART = r"^(no|always|unless-stopped|on-failure(:[1-9][0-9]{0,2})?)$"
LABEL_KEY = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$"
HOSTNAME = r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
CAPABILITY = r"^(CAP_)?[A-Z][A-Z_]{1,31}$"
DEVICE = r"^/dev/[A-Za-z0-9._/-]{1,200}(:/dev/[A-Za-z0-9._/-]{1,200})?(:[rwm]{1,3})?$"
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                "rtprio", "rttime", "sigpending", "stack")
_REGION = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
_BOOL = r"^(true|false)$"
# What each log driver may be told, and the shape of each value. Docker evaluates `{{...}}` templates in some
# options (tag): no pattern admits a brace.
LOG_OPTIONS: dict[str, dict[str, str]] = {
    "json-file": {"max-size": SIZE, "max-file": r"^[1-9][0-9]{0,2}$", "compress": _BOOL},
    "awslogs": {"awslogs-group": r"^[.\-_/#A-Za-z0-9]{1,512}$", "awslogs-region": _REGION,
                "awslogs-stream-prefix": r"^[A-Za-z0-9._/-]{1,128}$", "awslogs-create-group": _BOOL,
                "mode": r"^(blocking|non-blocking)$", "max-buffer-size": SIZE},
    "journald": {"tag": r"^[A-Za-z0-9._/-]{1,64}$"},
    "none": {},
}
# berth's own labels (berth.service, berth.settings, berth.proxy-for) tell its containers apart.
RESERVED_LABEL_PREFIX = "berth."


def size_bytes(size: str) -> int:
    return int(size[:-1]) * _SIZE_UNITS[size[-1]]


class LogSpec(StrictModel):
    driver: Literal["awslogs", "json-file", "journald", "none"]
    options: dict[str, str] = Field(default_factory=dict, max_length=8)

    @model_validator(mode="after")
    def _known_options(self) -> LogSpec:
        allowed = LOG_OPTIONS[self.driver]
        for key, value in self.options.items():
            if key not in allowed:
                names = ", ".join(allowed) or "none"
                raise ValueError(f"log driver {self.driver} takes no option {key!r} (it takes: {names})")
            if not re.match(anchored(allowed[key]), value):
                raise ValueError(f"log option {key}: {value[:64]!r} does not match {allowed[key]}")
        return self


class Ulimit(StrictModel):
    soft: int = Field(ge=-1, le=2 ** 62)
    hard: int = Field(ge=-1, le=2 ** 62)

    @model_validator(mode="after")
    def _soft_within_hard(self) -> Ulimit:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError("the soft limit may not pass the hard one (-1 is unlimited)")
        return self


class RunOptions(StrictModel):
    """The `docker run` options of a target's container; every one optional."""

    command: Args | None = Field(default=None, description="arguments after the image (the image's CMD otherwise)")
    entrypoint: Args | None = Field(default=None, description=(
        "the program and its first arguments: --entrypoint=FIRST, the rest before `command`"))
    user: Annotated[str, Field(pattern=anchored(USER))] | None = Field(
        default=None, description="user[:group], by name or number")
    workdir: Annotated[str, Field(max_length=1024)] | None = None
    volumes: list[str] = Field(default_factory=list, max_length=32, description=(
        "SOURCE:TARGET[:ro]; SOURCE an absolute host path or a named volume"))
    memory: Annotated[str, Field(pattern=anchored(SIZE))] | None = Field(
        default=None, description="hard memory limit, e.g. 512m or 1g")
    memory_reservation: Annotated[str, Field(pattern=anchored(SIZE))] | None = Field(
        default=None, description="soft memory limit, at most `memory`")
    cpus: float | None = Field(default=None, ge=0.01, le=1024, description="CPUs, e.g. 0.5 (two decimals)")
    log: LogSpec | None = None
    labels: dict[Annotated[str, Field(pattern=anchored(LABEL_KEY))], Annotated[str, Field(max_length=1024)]] = (
        Field(default_factory=dict, max_length=64))
    network: Annotated[str, Field(pattern=anchored(NETWORK_NAME))] | None = Field(
        default=None, description="bridge, host, or a network berth creates if missing")
    restart: Annotated[str, Field(pattern=anchored(RESTART))] | None = Field(
        default=None, description="no, always, unless-stopped (berth's default) or on-failure[:N]")
    stop_timeout_seconds: int | None = Field(default=None, ge=0, le=600)
    read_only: bool = False
    init: bool = False
    ulimits: dict[str, Ulimit] = Field(default_factory=dict, max_length=len(ULIMIT_NAMES), description=(
        "name -> {soft, hard}; -1 is unlimited"))
    extra_hosts: dict[Annotated[str, Field(pattern=anchored(HOSTNAME))], str] = Field(
        default_factory=dict, max_length=32, description="hostname -> IP address (or host-gateway)")
    privileged: bool = Field(default=False, description=(
        "run with --privileged; required for devices, cap_add, pid: host and volumes of the host's system paths"))
    devices: list[Annotated[str, Field(pattern=anchored(DEVICE))]] = Field(default_factory=list, max_length=16)
    cap_add: list[Annotated[str, Field(pattern=anchored(CAPABILITY))]] = Field(default_factory=list, max_length=40)
    pid: Literal["host"] | None = None

    @field_validator("command", "entrypoint")
    @classmethod
    def _args(cls, args: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return check_args(args, f"{info.field_name}")

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus_is_a_number(cls, cpus: Any) -> Any:
        if isinstance(cpus, bool) or not isinstance(cpus, int | float | None):
            raise ValueError("cpus is a number, e.g. 0.5")
        if cpus is not None and round(float(cpus), 2) != cpus:
            raise ValueError("cpus takes at most two decimals, e.g. 0.25")
        return cpus

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, workdir: str | None) -> str | None:
        if workdir is not None:
            plain_text(workdir, "workdir")
            if not is_normal_path(workdir):
                raise ValueError("workdir is an absolute path in its normal form (no '.', '..', '//' or trailing '/')")
        return workdir

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, volumes: list[str]) -> list[str]:
        refuse_repeats(volumes, lambda volume: parse_volume(volume)[1],
                       lambda volume, target: f"volume {volume!r}: {target} is mounted twice")
        return volumes

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if key.lower().startswith(RESERVED_LABEL_PREFIX):
                raise ValueError(f"label {key}: keys starting with {RESERVED_LABEL_PREFIX!r} are berth's own")
            plain_text(value, f"label {key}")
        return labels

    @field_validator("ulimits")
    @classmethod
    def _ulimit_names(cls, ulimits: dict[str, Ulimit]) -> dict[str, Ulimit]:
        for name in ulimits:
            if name not in ULIMIT_NAMES:
                raise ValueError(f"ulimit {name[:32]!r} is not one of " + ", ".join(ULIMIT_NAMES))
        return ulimits

    @field_validator("network")
    @classmethod
    def _network(cls, network: str | None) -> str | None:
        if network in ("none", "default"):
            raise ValueError(f"network {network!r}: use bridge, host, or a network of your own name")
        return network

    @field_validator("extra_hosts")
    @classmethod
    def _extra_hosts(cls, hosts: dict[str, str]) -> dict[str, str]:
        for host, address in hosts.items():
            if address == "host-gateway":
                continue
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"extra_hosts {host}: {address[:64]!r} is not an IP address or host-gateway") from None
        return hosts

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> RunOptions:
        if self.memory and self.memory_reservation and \
                size_bytes(self.memory_reservation) > size_bytes(self.memory):
            raise ValueError(f"memory_reservation ({self.memory_reservation}) may not pass memory ({self.memory})")
        for field in ("memory", "memory_reservation"):
            value = getattr(self, field)
            if value and size_bytes(value) < MIN_MEMORY_BYTES:
                raise ValueError(f"{field} {value} is under Docker's minimum of 6m")
        if not self.privileged:
            widening = host_widening_fields(self)
            if widening:
                raise ValueError(f"{widening[0]}; set \"privileged\": true to allow it (the container then runs "
                                 "with --privileged)")
        size = run_options_json_bytes(self) if admitting(info) else 0
        if size > MAX_RUN_OPTIONS_BYTES:
            raise ValueError(f"the run options take {size} bytes as JSON, at most {MAX_RUN_OPTIONS_BYTES}: the spec is "
                             "stored in one DynamoDB item with its deployment's record")
        return self


RUN_OPTION_FIELDS = tuple(RunOptions.model_fields)


def host_widening_fields(options: RunOptions) -> list[str]:
    """What in `options` gives the container its host, each naming its field: empty when nothing does."""
    found = [f"{field} gives the container its host" for field in ("devices", "cap_add")
             if getattr(options, field)]
    if options.pid == "host":
        found.append("pid: host gives the container the host's processes")
    for index, volume in enumerate(options.volumes):
        source, _, read_only = parse_volume(volume)
        why = host_path_widens(source, read_only) if source.startswith("/") else None
        if why:
            found.append(f"volumes[{index}] mounts the host's {source}: {why}")
    return found


def run_options_json_bytes(options: RunOptions) -> int:
    return json_bytes(options.model_dump(include=set(RUN_OPTION_FIELDS), exclude_defaults=True))
