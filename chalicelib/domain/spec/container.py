"""The container a target runs: its name, ports and environment (how it runs is RunOptions), and its health check."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .command_args import command_bytes, env_command_bytes, run_option_args, secret_args
from .fields import Args, StrictModel, admitting, anchored, check_args, json_bytes, refuse_repeats
from .run_options import RunOptions
from .secrets import SecretReferences

CONTAINER_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
# The names the instance scripts give their own containers beside NAME (NAME-berth-next, the candidate of a swap;
# NAME-berth-proxy, the local proxy) and the backup name of their earlier release: no service may take them, or
# deploying one service would replace another's container.
RESERVED_CONTAINER_SUFFIXES = ("-berth-previous", "-berth-next", "-berth-proxy", "-berth-proxy-next")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_PORT_MAPPING = re.compile(r"^(?P<host>[0-9]{1,5}):(?P<container>[0-9]{1,5})(?:/(?P<proto>tcp|udp))?\Z")
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]{0,255}\Z")
MAX_ENV_VALUE = 4096
# A spec is stored whole in one DynamoDB item (MAX_SPEC_BYTES, target.py). Every field but `env` is short by its own
# rules (a spec with all of them at their limits is about 14 KB), so `env` gets most of the budget and the error
# names it.
MAX_ENV_BYTES = 48 * 1024
# env also travels in the SSM command, `--env 'KEY=VALUE'` quoted for the shell and JSON-encoded, where SSM refuses a
# document over 64 KB (MaxDocumentSizeExceeded) and berth's scripts take about 31 KB: env, the run options and the
# secrets' ARNs share 28 KB of it, health_check.command 2 KB, measured as SendCommand carries them (command_args.py).
# A test builds the command of the largest spec accepted and keeps it under SSM's limit.
MAX_ENV_COMMAND_BYTES = 28 * 1024
MAX_HEALTH_COMMAND_BYTES = 2 * 1024


def _port_mapping(mapping: str) -> re.Match[str]:
    match = _PORT_MAPPING.match(mapping)
    if not match:
        raise ValueError(f"port mapping {mapping!r} must be HOST:CONTAINER, optionally with /tcp or /udp")
    return match


def _published_port(mapping: str) -> tuple[int, str]:
    """The host port and protocol `mapping` publishes: one host port may be published once per protocol (53:53/udp
    and 53:53/tcp are two mappings)."""
    match = _port_mapping(mapping)
    for side in ("host", "container"):
        if match.group(side).startswith("0") and match.group(side) != "0":
            raise ValueError(f"port mapping {mapping!r}: write ports without leading zeros")
        if not 1 <= int(match.group(side)) <= 65535:
            raise ValueError(f"port mapping {mapping!r}: ports run from 1 to 65535")
    return int(match.group("host")), match.group("proto") or "tcp"


class ContainerSpec(RunOptions, SecretReferences):
    """The container: its name, ports and environment here; how it runs (command, volumes, limits...) in RunOptions;
    its secrets, by ARN, in SecretReferences."""

    name: Annotated[str, Field(pattern=anchored(CONTAINER_NAME), description="Docker container name; it may not end "
                               "in " + ", ".join(RESERVED_CONTAINER_SUFFIXES) + " (berth names its own containers so)")]
    ports: list[str] = Field(default_factory=list, max_length=32)
    env: dict[Annotated[str, Field(pattern=anchored(ENV_NAME))], str] = Field(default_factory=dict, max_length=128)
    keep_images: int | None = Field(default=None, ge=1, le=99, description=(
        "how many of this container's most recent images an instance keeps when it prunes (after every swap, and "
        "when a pull or start runs out of disk); default 3. The running and the previous image are always kept"))

    @field_validator("name")
    @classmethod
    def _docker_name(cls, name: str, info: ValidationInfo) -> str:
        if not admitting(info):
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
        if not admitting(info):
            for mapping in ports:
                _port_mapping(mapping)
            return ports
        refuse_repeats(ports, _published_port, lambda mapping, published: (
            f"port mapping {mapping!r} maps host port {published[0]}/{published[1]} twice"))
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
        size = json_bytes(env) if admitting(info) else 0
        if size > MAX_ENV_BYTES:
            raise ValueError(f"env is {size} bytes as JSON, at most {MAX_ENV_BYTES}: the spec is stored in one "
                             "DynamoDB item with its deployment's record; keep large values in Parameter Store or "
                             "Secrets Manager and have the container read them")
        in_command = env_command_bytes(env) if admitting(info) else 0
        if in_command > MAX_ENV_COMMAND_BYTES:
            raise ValueError(f"env takes {in_command} bytes in the SSM command, at most {MAX_ENV_COMMAND_BYTES}: SSM "
                             "refuses a command over 64 KB; keep large values in Parameter Store or Secrets Manager "
                             "and have the container read them")
        return env

    @model_validator(mode="after")
    def _fits_the_command(self, info: ValidationInfo) -> ContainerSpec:
        if self.network == "host" and self.ports:
            raise ValueError("network host: the container binds the host's ports itself; list no ports")
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise ValueError(f"{both[0]} is in both env and secrets: give each variable one source")
        if not admitting(info):
            return self
        env_bytes, options_bytes = env_command_bytes(self.env), command_bytes(run_option_args(self))
        secrets_bytes = command_bytes(secret_args(self))
        if self.command_budget_bytes() > MAX_ENV_COMMAND_BYTES:
            raise ValueError(f"env ({env_bytes} bytes), the run options ({options_bytes} bytes) and secrets "
                             f"({secrets_bytes} bytes) take {env_bytes + options_bytes + secrets_bytes} bytes in the "
                             f"SSM command, at most {MAX_ENV_COMMAND_BYTES}: SSM refuses a command over 64 KB")
        return self

    def command_budget_bytes(self) -> int:
        """What env, the run options and secrets take in an SSM command, against MAX_ENV_COMMAND_BYTES."""
        return env_command_bytes(self.env) + command_bytes(run_option_args(self)) + command_bytes(secret_args(self))


class HealthCheckSpec(StrictModel):
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
        if admitting(info) and in_command > MAX_HEALTH_COMMAND_BYTES:
            raise ValueError(f"the health command takes {in_command} bytes in the SSM command, at most "
                             f"{MAX_HEALTH_COMMAND_BYTES}: run a script of the image instead")
        return command

    @model_validator(mode="after")
    def _port_or_command(self) -> HealthCheckSpec:
        if self.port is None and self.command is None:
            raise ValueError("give a port (an HTTP check), a command (run inside the container) or both")
        return self
