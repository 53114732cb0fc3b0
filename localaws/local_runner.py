"""An outcome hook that runs ``AWS-RunShellScript`` commands on this machine, for local mode.

Like the SSM agent, the commands are written to a script file and run with ``sh -c <script>`` (so a
``#!`` line chooses the interpreter), with ``workingDirectory`` and ``executionTimeout`` honoured. The
script runs once per targeted instance, with ``LOCALAWS_INSTANCE_ID`` set, synchronously inside
SendCommand. Other documents fall through to the configured outcomes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from typing import Any

from . import state
from .outcomes import InstanceOutcome

DOCUMENT = "AWS-RunShellScript"
DEFAULT_TIMEOUT_SECONDS = 3600


def _first(parameters: dict[str, list[str]], name: str) -> str | None:
    values = parameters.get(name) or []
    return values[0] if values else None


def run_locally(instance_id: str, command: dict[str, Any]) -> InstanceOutcome | None:
    if command.get("DocumentName") != DOCUMENT:
        return None
    parameters: dict[str, list[str]] = command.get("Parameters") or {}
    timeout = int(_first(parameters, "executionTimeout") or DEFAULT_TIMEOUT_SECONDS)
    with tempfile.TemporaryDirectory(prefix="localaws-run-") as scratch:
        script = os.path.join(scratch, "_script.sh")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write("\n".join(parameters.get("commands", [])) + "\n")
        os.chmod(script, stat.S_IRWXU)
        try:
            done = subprocess.run(
                ["sh", "-c", script],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=_first(parameters, "workingDirectory") or scratch,
                env={**os.environ, "LOCALAWS_INSTANCE_ID": instance_id},
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return InstanceOutcome(
                status="TimedOut", response_code=-1, stdout=_text(expired.stdout), stderr=_text(expired.stderr)
            )
    status = "Success" if done.returncode == 0 else "Failed"
    return InstanceOutcome(status=status, response_code=done.returncode, stdout=done.stdout, stderr=done.stderr)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def enable() -> None:
    """Make :func:`run_locally` this process's outcome hook, kept across resets."""
    state.set_process_hook(run_locally)
