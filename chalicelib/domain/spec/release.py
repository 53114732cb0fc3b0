"""The release task: a one-off container of the new image, run once per deployment before anything is swapped.

`release: {"command": ["bin/rails", "db:migrate"], "timeout_seconds": 600}` runs the command on one instance of the
target (the first Online one, by id) in the new digest's image, with the env and run options the swap gives the
service's container (domain/container_commands.py builds the script, as for `berth exec`). Its timeout is its own:
the release runs in its own SSM command, before the swap's, so it is not bounded by rollout.timeout_seconds.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from .command_args import command_bytes
from .fields import Args, StrictModel, admitting, check_args

MIN_RELEASE_SECONDS = 30
MAX_RELEASE_SECONDS = 3600
# The release's script shares the SSM document (64 KB) with the env and run options, which take at most 32 KB.
MAX_RELEASE_COMMAND_BYTES = 16 * 1024


class ReleaseSpec(StrictModel):
    command: Args = Field(description=(
        "run once per deployment, on one instance, in the new image (docker run's COMMAND: no shell unless you name "
        "one), before any instance is swapped; a non-zero exit fails the deployment with nothing swapped"))
    timeout_seconds: int = Field(default=600, ge=MIN_RELEASE_SECONDS, le=MAX_RELEASE_SECONDS, description=(
        "the task is stopped after this long and the deployment fails"))

    @field_validator("command")
    @classmethod
    def _command(cls, command: list[str], info: ValidationInfo) -> list[str]:
        check_args(command, "command")
        size = command_bytes(command)
        if admitting(info) and size > MAX_RELEASE_COMMAND_BYTES:
            raise ValueError(f"the release command takes {size} bytes in the SSM command, at most "
                             f"{MAX_RELEASE_COMMAND_BYTES}: run a script of the image instead")
        return command
