"""A local stand-in for CodePipeline's side of a Lambda invoke action.

It hands berth's `pipeline_job` the job event AWS documents, reads back the job result berth reported, and while
the result carries a continuation token invokes again with a new job id and that token, as CodePipeline does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_EVENT = Path(__file__).resolve().parent.parent / "tests" / "events" / "codepipeline_job.json"


@dataclass(frozen=True)
class Reply:
    job_id: str
    result: dict[str, Any]

    @property
    def kind(self) -> str:
        if self.result["type"] == "failure":
            return "failure"
        return "continue" if "continuationToken" in self.result else "success"

    @property
    def text(self) -> str:
        if self.result["type"] == "failure":
            return str(self.result["failureDetails"]["message"])
        details = self.result.get("executionDetails", {})
        percent = details.get("percentComplete")
        return (f"[{percent}%] " if percent is not None else "") + str(details.get("summary", ""))


def job_event(user_parameters: str, bucket: str, key: str, token: str | None = None,
              job_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text())
    job = event["CodePipeline.job"]
    job["id"] = job_id or str(uuid.uuid4())
    job["data"]["actionConfiguration"]["configuration"]["UserParameters"] = user_parameters
    job["data"]["inputArtifacts"][0]["location"]["s3Location"] = {"bucketName": bucket, "objectKey": key}
    if token is not None:
        job["data"]["continuationToken"] = token
    return event


def run_job(invoke: Callable[[dict[str, Any]], None], job_results: Callable[[str], list[dict[str, Any]]],
            user_parameters: str, bucket: str, key: str, on_reply: Callable[[Reply], None] = lambda reply: None,
            max_rounds: int = 50, between_rounds: Callable[[], None] = lambda: None,
            first_job_id: str | None = None) -> list[Reply]:
    """Run one action execution to its end; every invocation must report exactly one result."""
    replies: list[Reply] = []
    token: str | None = None
    for round_number in range(max_rounds):
        event = job_event(user_parameters, bucket, key, token, first_job_id if round_number == 0 else None)
        job_id = event["CodePipeline.job"]["id"]
        invoke(event)
        results = job_results(job_id)
        if len(results) != 1:
            raise AssertionError(f"job {job_id} got {len(results)} results, expected exactly one")
        reply = Reply(job_id, results[0])
        replies.append(reply)
        on_reply(reply)
        if reply.kind != "continue":
            return replies
        token = results[0]["continuationToken"]
        between_rounds()
    raise AssertionError(f"the action did not finish in {max_rounds} invocations")
