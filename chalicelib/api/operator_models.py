"""The response bodies of the operators' routes (logs, exec); `chalicelib.api.models` names them for the routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.instance_output import INLINE_STDOUT_LIMIT, InvocationOutput


class CommandStartedView(BaseModel):
    command_id: str = Field(description="the SSM command; read its output with the matching GET .../{command_id}")
    target: str
    instances: list[str]
    instances_left_out: int = Field(default=0, description="Online instances beyond SSM's 50 a command")

    @classmethod
    def of(cls, started: Any) -> CommandStartedView:
        return cls(command_id=started.command_id, target=started.target, instances=list(started.instance_ids),
                   instances_left_out=getattr(started, "instances_left_out", 0))


class InstanceOutputView(BaseModel):
    instance_id: str
    status: str = Field(description="SSM's status of the invocation: Pending, InProgress, Success, Failed, ...")
    done: bool
    exit_code: int | None = Field(description="the command's exit code once it ended")
    output: str = Field(description="stdout and stderr, in order, as SSM keeps them inline")
    cut: bool = Field(description=f"SSM keeps {INLINE_STDOUT_LIMIT} characters inline: the output was longer")
    output_url: str | None = Field(default=None, description="the whole output in S3, when an output bucket is set")

    @classmethod
    def of(cls, output: InvocationOutput) -> InstanceOutputView:
        return cls(instance_id=output.instance_id, status=output.status, done=output.done, exit_code=output.exit_code,
                   output=output.output, cut=output.cut, output_url=output.output_url)


class LogsView(BaseModel):
    command_id: str
    target: str
    done: bool = Field(description="every instance has answered")
    lines: list[str] = Field(description="every instance's lines, each prefixed by its instance id, newest last")
    instances: list[InstanceOutputView]

    @classmethod
    def of(cls, logs: Any) -> LogsView:
        return cls(command_id=logs.command_id, target=logs.target, done=logs.done, lines=logs.lines,
                   instances=[InstanceOutputView.of(output) for output in logs.instances])


class ExecStartedView(BaseModel):
    command_id: str
    target: str
    caller: str
    command: list[str]
    image: str = Field(description="the target's current revision, which the one-off container runs")
    instances: list[str]
    timeout_seconds: int
    started_at: str

    @classmethod
    def of(cls, record: Any) -> ExecStartedView:
        return cls(command_id=record.command_id, target=record.target, caller=record.caller,
                   command=list(record.command), image=record.image, instances=list(record.instance_ids),
                   timeout_seconds=record.timeout_seconds, started_at=record.started_at)


class ExecView(ExecStartedView):
    done: bool
    exit_code: int | None = Field(description="once every instance ended: the first non-zero exit code, else 0")
    results: list[InstanceOutputView]

    @classmethod
    def of(cls, run: Any) -> ExecView:
        started = ExecStartedView.of(run.record)
        return cls(**started.model_dump(), done=run.done, exit_code=run.exit_code,
                   results=[InstanceOutputView.of(output) for output in run.instances])
