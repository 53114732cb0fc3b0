"""How a target's container runs: command, volumes, limits, logs, network, restart policy and the rest.

`RunOptions` holds the fields; `ContainerSpec` (spec.py) inherits them. Each value reaches `docker run` as one
argument in its `--option=value` form (`run_option_args`), so no value can become an option of its own, and a value
is validated here first, before the Lambda sends anything, and again by start_container.sh on the instance, which is
what checks a CodeDeploy revision's deploy.env.

Whatever widens what a container can do to its host (`privileged`, `devices`, `cap_add`, `pid: host`, a volume of
the Docker socket or of the host's system directories) is refused unless the spec says `"privileged": true`, and the
refusal names the field. `privileged: true` runs the container with `--privileged`, as Docker's and ECS's flag of
that name does, and admits the others.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# One argument of a command: any text but NUL (argv cannot hold it), at most as long as an env value.
MAX_ARG = 4096
MAX_ARGS = 64
# The run options together, as JSON: with env's budget they keep a spec inside MAX_SPEC_BYTES (spec.py).
MAX_RUN_OPTIONS_BYTES = 12 * 1024
# Docker refuses a memory limit under 6 MiB.
MIN_MEMORY_BYTES = 6 * 1024 * 1024
SIZE = r"^[1-9][0-9]{0,6}[bkmg]$"
_SIZE_UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_NAME_OR_ID = r"([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10})"
USER = rf"^{_NAME_OR_ID}(:{_NAME_OR_ID})?$"
VOLUME_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
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
# Host paths a container must not mount without `privileged: true`. The Docker (containerd, podman) socket is root
# on the host, and so is any directory above it; /proc, /sys and /dev reach the kernel and the devices. Mounted
# writable, the host's system directories and berth's own state (the proxies' files) are root too; read-only they
# are not (`/etc/localtime:/etc/localtime:ro` is common).
CONTAINER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                     "/var/run/containerd/containerd.sock", "/run/podman/podman.sock", "/var/run/podman/podman.sock")
HOST_TREES = ("/proc", "/sys", "/dev", "/root", "/var/lib/docker", "/var/lib/containerd", "/run/docker",
              "/var/run/docker", "/run/containerd", "/var/run/containerd")
HOST_TREES_WRITABLE = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/var/lib/berth")
# berth's own labels (berth.service, berth.settings, berth.proxy-for) tell its containers apart.
RESERVED_LABEL_PREFIX = "berth."

Arg = Annotated[str, Field(max_length=MAX_ARG)]
Args = Annotated[list[Arg], Field(min_length=1, max_length=MAX_ARGS)]


def _anchored(pattern: str) -> str:
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern


def _admitting(info: ValidationInfo) -> bool:
    # spec.STORED: rules that bound sizes apply to specs coming in, not to those berth reads back.
    return not (isinstance(info.context, dict) and info.context.get("berth_stored"))


def _plain_text(value: str, what: str, limit: int = 1024) -> str:
    if len(value) > limit:
        raise ValueError(f"{what}: longer than {limit} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what}: control characters (newlines, tabs, escapes) are not allowed")
    _utf8(value, what)
    return value


def _utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: not valid Unicode text") from None


def size_bytes(size: str) -> int:
    return int(size[:-1]) * _SIZE_UNITS[size[-1]]


def is_normal_path(path: str) -> bool:
    """An absolute path in its normal form: no empty, `.` or `..` component, no trailing slash (but `/`)."""
    if not path.startswith("/"):
        return False
    return path == "/" or all(part not in ("", ".", "..") for part in path[1:].split("/"))


def _within(path: str, tree: str) -> bool:
    return tree == "/" or path == tree or path.startswith(tree + "/")


def host_path_widens(path: str, read_only: bool) -> str | None:
    """Why mounting host `path` gives a container its host, or None. `path` is normal (is_normal_path)."""
    for socket in CONTAINER_SOCKETS:
        if _within(socket, path):
            return f"it holds the container engine's socket {socket} (root on the host)"
    for tree in HOST_TREES:
        if _within(path, tree):
            return f"{tree} reaches the host's kernel, devices or the engine's own data"
    if not read_only:
        for tree in HOST_TREES_WRITABLE:
            if _within(path, tree):
                return f"{tree} written from a container is root on the host (mount it with :ro)"
    return None


def parse_volume(volume: str) -> tuple[str, str, bool]:
    """`SOURCE:TARGET[:ro]` -> (source, target, read_only); ValueError naming what is wrong."""
    parts = volume.split(":")
    read_only = len(parts) == 3 and parts[2] == "ro"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not read_only):
        raise ValueError(f"volume {volume!r} must be SOURCE:TARGET or SOURCE:TARGET:ro (paths hold no ':')")
    source, target = parts[0], parts[1]
    _plain_text(volume, "volume", 1024)
    if source.startswith("/"):
        if not is_normal_path(source):
            raise ValueError(f"volume {volume!r}: write the host path in its normal form (no '.', '..', '//' or "
                             "trailing '/')")
    elif not re.match(_anchored(VOLUME_NAME), source):
        raise ValueError(f"volume {volume!r}: the source is a host path (starting with /) or a volume name "
                         "([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    if not is_normal_path(target) or target == "/":
        raise ValueError(f"volume {volume!r}: the target is an absolute path in its normal form, not /")
    if "," in volume:
        raise ValueError(f"volume {volume!r}: paths may not hold ','")
    return source, target, read_only


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, regex_engine="python-re")


class LogSpec(_Options):
    driver: Literal["awslogs", "json-file", "journald", "none"]
    options: dict[str, str] = Field(default_factory=dict, max_length=8)

    @model_validator(mode="after")
    def _known_options(self) -> LogSpec:
        allowed = LOG_OPTIONS[self.driver]
        for key, value in self.options.items():
            if key not in allowed:
                names = ", ".join(allowed) or "none"
                raise ValueError(f"log driver {self.driver} takes no option {key!r} (it takes: {names})")
            if not re.match(_anchored(allowed[key]), value):
                raise ValueError(f"log option {key}: {value[:64]!r} does not match {allowed[key]}")
        return self


class Ulimit(_Options):
    soft: int = Field(ge=-1, le=2 ** 62)
    hard: int = Field(ge=-1, le=2 ** 62)

    @model_validator(mode="after")
    def _soft_within_hard(self) -> Ulimit:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError("the soft limit may not pass the hard one (-1 is unlimited)")
        return self


def check_args(args: list[str] | None, what: str) -> list[str] | None:
    if args is None:
        return None
    for index, arg in enumerate(args):
        if "\x00" in arg:
            raise ValueError(f"{what}[{index}]: NUL bytes cannot pass as an argument")
        _utf8(arg, f"{what}[{index}]")
    if args[0] == "":
        raise ValueError(f"{what}[0]: the program to run may not be empty")
    return args


class RunOptions(_Options):
    """The `docker run` options of a target's container; every one optional."""

    command: Args | None = Field(default=None, description="arguments after the image (the image's CMD otherwise)")
    entrypoint: Args | None = Field(default=None, description=(
        "the program and its first arguments: --entrypoint=FIRST, the rest before `command`"))
    user: Annotated[str, Field(pattern=_anchored(USER))] | None = Field(
        default=None, description="user[:group], by name or number")
    workdir: Annotated[str, Field(max_length=1024)] | None = None
    volumes: list[str] = Field(default_factory=list, max_length=32, description=(
        "SOURCE:TARGET[:ro]; SOURCE an absolute host path or a named volume"))
    memory: Annotated[str, Field(pattern=_anchored(SIZE))] | None = Field(
        default=None, description="hard memory limit, e.g. 512m or 1g")
    memory_reservation: Annotated[str, Field(pattern=_anchored(SIZE))] | None = Field(
        default=None, description="soft memory limit, at most `memory`")
    cpus: float | None = Field(default=None, ge=0.01, le=1024, description="CPUs, e.g. 0.5 (two decimals)")
    log: LogSpec | None = None
    labels: dict[Annotated[str, Field(pattern=_anchored(LABEL_KEY))], Annotated[str, Field(max_length=1024)]] = (
        Field(default_factory=dict, max_length=64))
    network: Annotated[str, Field(pattern=_anchored(NETWORK_NAME))] | None = Field(
        default=None, description="bridge, host, or a network berth creates if missing")
    restart: Annotated[str, Field(pattern=_anchored(RESTART))] | None = Field(
        default=None, description="no, always, unless-stopped (berth's default) or on-failure[:N]")
    stop_timeout_seconds: int | None = Field(default=None, ge=0, le=600)
    read_only: bool = False
    init: bool = False
    ulimits: dict[str, Ulimit] = Field(default_factory=dict, max_length=len(ULIMIT_NAMES), description=(
        "name -> {soft, hard}; -1 is unlimited"))
    extra_hosts: dict[Annotated[str, Field(pattern=_anchored(HOSTNAME))], str] = Field(
        default_factory=dict, max_length=32, description="hostname -> IP address (or host-gateway)")
    privileged: bool = Field(default=False, description=(
        "run with --privileged; required for devices, cap_add, pid: host and volumes of the host's system paths"))
    devices: list[Annotated[str, Field(pattern=_anchored(DEVICE))]] = Field(default_factory=list, max_length=16)
    cap_add: list[Annotated[str, Field(pattern=_anchored(CAPABILITY))]] = Field(default_factory=list, max_length=40)
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
            _plain_text(workdir, "workdir")
            if not is_normal_path(workdir):
                raise ValueError("workdir is an absolute path in its normal form (no '.', '..', '//' or trailing '/')")
        return workdir

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, volumes: list[str]) -> list[str]:
        targets: set[str] = set()
        for volume in volumes:
            _, target, _ = parse_volume(volume)
            if target in targets:
                raise ValueError(f"volume {volume!r}: {target} is mounted twice")
            targets.add(target)
        return volumes

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if key.lower().startswith(RESERVED_LABEL_PREFIX):
                raise ValueError(f"label {key}: keys starting with {RESERVED_LABEL_PREFIX!r} are berth's own")
            _plain_text(value, f"label {key}")
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
        size = run_options_json_bytes(self) if _admitting(info) else 0
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
    dumped = options.model_dump(include=set(RUN_OPTION_FIELDS), exclude_defaults=True)
    return len(json.dumps(dumped, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _number(cpus: float) -> str:
    return f"{cpus:.2f}".rstrip("0").rstrip(".")


def run_option_args(options: RunOptions) -> list[str]:
    """start_container.sh's arguments for the run options, unquoted: `--flag VALUE` pairs and bare switches.

    The script checks each again and hands it to `docker run` in its `--option=value` form.
    """
    args: list[str] = []
    for arg in options.entrypoint or []:
        args += ["--entrypoint", arg]
    for arg in options.command or []:
        args += ["--cmd", arg]
    for flag, value in (("--user", options.user), ("--workdir", options.workdir), ("--memory", options.memory),
                        ("--memory-reservation", options.memory_reservation),
                        ("--cpus", None if options.cpus is None else _number(options.cpus)),
                        ("--network", options.network), ("--restart", options.restart), ("--pid", options.pid)):
        if value is not None:
            args += [flag, value]
    for volume in options.volumes:
        args += ["--volume", volume]
    if options.log is not None:
        args += ["--log-driver", options.log.driver]
        for key, value in sorted(options.log.options.items()):
            args += ["--log-opt", f"{key}={value}"]
    for key, value in sorted(options.labels.items()):
        args += ["--label", f"{key}={value}"]
    for name, limit in sorted(options.ulimits.items()):
        args += ["--ulimit", f"{name}={limit.soft}:{limit.hard}"]
    for host, address in sorted(options.extra_hosts.items()):
        args += ["--add-host", f"{host}:{address}"]
    for device in options.devices:
        args += ["--device", device]
    for capability in options.cap_add:
        args += ["--cap-add", capability]
    if options.stop_timeout_seconds is not None:
        args += ["--stop-timeout", str(options.stop_timeout_seconds)]
    args += [switch for switch, on in (("--read-only", options.read_only), ("--init", options.init),
                                       ("--privileged", options.privileged)) if on]
    return args


def command_bytes(args: list[str]) -> int:
    """The bytes `args` take in SendCommand's parameters: each one shell-quoted after a space, JSON-encoded."""
    return sum(len(json.dumps(" " + shlex.quote(arg))) - 2 for arg in args)
