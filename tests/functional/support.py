"""Helpers shared by the functional tests: the example target spec, UUID job ids, invoking berth's Lambdas."""

from __future__ import annotations

import uuid
from typing import Any

from chalice.test import Client

import localaws
from app import app

TAGS = {"app": "web", "env": "prod"}


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": "web-prod",
        "instances": {"tags": TAGS},
        "container": {"name": "web", "ports": ["5000:5000"], "env": {"APP_MODE": "production"}},
        "health_check": {"path": "/health", "port": 5000, "timeout_seconds": 60},
        "rollout": {"max_concurrency": "25%", "max_errors": "0"},
    }
    body.update(overrides)
    return body


def jid(name: str) -> str:
    """CodePipeline job ids are UUIDs; a name makes each test's ids readable and stable."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def invoke(event: dict[str, Any], function: str = "pipeline_job") -> Any:
    with Client(app, stage_name="test") as client:
        return client.lambda_.invoke(function, event).payload


RULES = {"aws.codedeploy": "codedeploy_events", "aws.ssm": "ssm_command_events",
         "aws.codepipeline": "pipeline_action_failed"}


def deliver(event: dict[str, Any]) -> Any:
    """Hand an EventBridge event to the Lambda whose rule matches its source, as EventBridge would."""
    return invoke(event, RULES[event["source"]])


def results(job_id: str) -> list[dict[str, Any]]:
    return localaws.job_results(job_id)


def store_with_target(dynamodb: Any, name: str = "web") -> Any:
    """berth's store on the embedded AWS, holding one minimal target `name` (tagged app=web)."""
    from chalicelib.adapters.store import DeploymentStore
    from chalicelib.domain.spec import TargetSpec
    from tests.conftest import TABLE

    store = DeploymentStore(dynamodb, TABLE)
    store.put_target(TargetSpec.model_validate({"target": name, "instances": {"tags": {"app": "web"}},
                                                "container": {"name": "web"}}), "test")
    return store

