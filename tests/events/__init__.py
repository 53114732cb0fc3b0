"""AWS sample events, loaded by name, with the few fields a test must point at its own emulated resources."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


def pipeline_job_event(name: str = "codepipeline_job", *, job_id: str | None = None,
                       user_parameters: str | None = None, bucket: str | None = None, key: str | None = None,
                       token: str | None = None, no_artifacts: bool = False) -> dict[str, Any]:
    event = load_event(name)
    job = event["CodePipeline.job"]
    if job_id is not None:
        job["id"] = job_id
    if user_parameters is not None:
        job["data"]["actionConfiguration"]["configuration"]["UserParameters"] = user_parameters
    if bucket is not None and key is not None:
        job["data"]["inputArtifacts"][0]["location"]["s3Location"] = {"bucketName": bucket, "objectKey": key}
    if no_artifacts:
        job["data"]["inputArtifacts"] = []
    if token is not None:
        job["data"]["continuationToken"] = token
    return event
