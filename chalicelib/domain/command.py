"""The shell that SSM Run Command runs on each instance, built from the repository's own instance scripts.

`AWS-RunShellScript` writes the command lines to a file and runs it with `sh` (dash on Ubuntu), so this wrapper is
POSIX sh: it writes `install_docker.sh` and `start_container.sh` byte for byte into a private temp dir and runs them
with bash. Each script travels gzipped and base64-encoded in a quoted heredoc (`base64 -d | gunzip`): SSM refuses a
command whose document passes 64 KB (MaxDocumentSizeExceeded), and the scripts as text would take most of that;
compressed they take under a third, which leaves the spec's own values the rest. Every value from the spec reaches
the shell through `shlex.quote`, after validation, as one argument of start_container.sh (the run options too:
`--volume SPEC`, `--cmd ARG` for each argument of the command, and so on); nothing is ever evaluated. The wrapper
exits with the scripts' own exit code, which SSM reports as the invocation's ResponseCode.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shlex
from dataclasses import dataclass

from .image_ref import ImageRef
from .spec import ContainerSpec, HealthCheckSpec
from .spec.command_args import run_option_args, secret_args

SHIPPED_SCRIPTS = ("install_docker.sh", "start_container.sh")
# SSM's limit on a command's document (the MaxDocumentSizeExceeded error of SendCommand).
MAX_DOCUMENT_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeployCommand:
    deployment_id: str
    image: ImageRef
    container: ContainerSpec
    health_check: HealthCheckSpec | None
    # The target allows `latest` or no tag; start_container.sh refuses them otherwise, as berth does.
    allow_mutable_tags: bool = False


def start_container_args(command: DeployCommand) -> list[str]:
    """The argument list for start_container.sh, unquoted (quoting happens once, when the line is built)."""
    args = ["--image", command.image.pinned, "--name", command.container.name]
    for mapping in command.container.ports:
        args += ["--port", mapping]
    for key, value in sorted(command.container.env.items()):
        args += ["--env", f"{key}={value}"]
    args += run_option_args(command.container)
    args += secret_args(command.container)
    if command.container.keep_images is not None:
        args += ["--keep-images", str(command.container.keep_images)]
    if command.health_check is not None:
        check = command.health_check
        if check.port is not None:
            args += ["--health-path", check.path, "--health-port", str(check.port)]
        for arg in check.command or []:
            args += ["--health-cmd", arg]
        args += ["--health-timeout", str(check.timeout_seconds), "--health-interval", str(check.interval_seconds)]
    if command.image.ecr_region:
        args += ["--ecr-login", command.image.ecr_region]
    if command.allow_mutable_tags and command.image.is_mutable:
        args.append("--allow-mutable-tags")
    return args


def build_shell_commands(command: DeployCommand, scripts: dict[str, str]) -> list[str]:
    """The `commands` parameter of AWS-RunShellScript: one line per element, as the SSM agent joins them."""
    lines = [
        "#!/bin/sh",
        f"# berth deployment {command.deployment_id}",
        "set -eu",
        'berth_dir="$(mktemp -d /tmp/berth.XXXXXX)"',
        "trap 'rm -rf \"$berth_dir\"' EXIT",
    ]
    for name in SHIPPED_SCRIPTS:
        lines += shipped_script(name, scripts[name])
    lines += [
        f"echo {shlex.quote('berth-deployment: ' + command.deployment_id)}",
        'bash "$berth_dir/install_docker.sh"',
        'bash "$berth_dir/start_container.sh" ' + " ".join(shlex.quote(arg) for arg in start_container_args(command)),
    ]
    return lines


def build_install_docker_commands(purpose: str, scripts: dict[str, str]) -> list[str]:
    """The remediation command: install_docker.sh alone, shipped the same way as the deploy command."""
    return [
        "#!/bin/sh",
        f"# berth remediation: {purpose}",
        "set -eu",
        'berth_dir="$(mktemp -d /tmp/berth.XXXXXX)"',
        "trap 'rm -rf \"$berth_dir\"' EXIT",
        *shipped_script("install_docker.sh", scripts["install_docker.sh"]),
        'bash "$berth_dir/install_docker.sh"',
    ]


def document_bytes(lines: list[str]) -> int:
    """A command's size as SendCommand carries it (the `commands` parameter, JSON-encoded), against
    MAX_DOCUMENT_BYTES."""
    return len(json.dumps({"commands": lines}).encode())


def shipped_script(name: str, text: str) -> list[str]:
    """The lines that write the script `name` into $berth_dir: gzipped, base64, in a quoted heredoc."""
    # mtime=0: the same script gives the same bytes, so a command's text depends on its inputs alone.
    encoded = base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()
    # Base64 has no "_", so no line of the payload can end the heredoc.
    delimiter = "BERTH_EOF_" + hashlib.sha256(text.encode()).hexdigest()[:16].upper()
    lines = [encoded[start:start + 76] for start in range(0, len(encoded), 76)]
    return [f"base64 -d <<'{delimiter}' | gunzip > \"$berth_dir/{name}\"", *lines, delimiter]
