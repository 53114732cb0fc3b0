"""The spec as start_container.sh's arguments, and what they weigh in the SSM command that carries them.

SSM refuses a document over 64 KB (MaxDocumentSizeExceeded) and berth's scripts take about 31 KB of it: the
container's env, the run options and the secrets' ARNs share 28 KB (container.py), measured here as SendCommand carries
them (a value of quotes or control characters takes several bytes a character there).
"""

from __future__ import annotations

import json
import shlex

from .run_options import RunOptions
from .secrets import SecretReferences


def command_bytes(args: list[str]) -> int:
    """The bytes `args` take in SendCommand's parameters: each one shell-quoted after a space, JSON-encoded."""
    return sum(len(json.dumps(" " + shlex.quote(arg))) - 2 for arg in args)


def env_command_bytes(env: dict[str, str]) -> int:
    """The bytes env takes in SendCommand's parameters: ` --env ` and the quoted pair, JSON-encoded."""
    return sum(len(json.dumps(" --env " + shlex.quote(f"{key}={value}"))) - 2 for key, value in env.items())


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


def secret_args(references: SecretReferences) -> list[str]:
    """start_container.sh's arguments for the secrets, unquoted: `--secret NAME=ARN` pairs, sorted by name, and
    `--registry-credentials ARN`. ARNs only: the instance reads the values itself."""
    args: list[str] = []
    for name, arn in sorted(references.secrets.items()):
        args += ["--secret", f"{name}={arn}"]
    if references.registry_credentials is not None:
        args += ["--registry-credentials", references.registry_credentials]
    return args
