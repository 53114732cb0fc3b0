"""SSM command events and scheduled retries, each turned into one call on the service that owns the deployment."""

from __future__ import annotations

import logging

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.errors import Conflict, InvalidEvent
from chalicelib.domain.events import RetryPayload, SsmCommandEvent
from chalicelib.services.codedeploy_events import CodeDeployFollower, Outcome
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.pipeline_retries import PipelineRetrier

logger = logging.getLogger(__name__)


class SsmCommandFollower:
    """An SSM command changed status: refresh the deployment it belongs to (which settles or retries it)."""

    def __init__(self, store: DeploymentStore, deployments: DeploymentService) -> None:
        self._store = store
        self._deployments = deployments

    def on_event(self, event: SsmCommandEvent) -> Outcome:
        deployment_id = self._store.find_command(event.detail.command_id)
        if deployment_id is None:
            return Outcome("ignored", f"command {event.detail.command_id} is not berth's")
        for _ in range(3):
            try:
                deployment = self._deployments.follow(deployment_id).deployment
                return Outcome("recorded", f"deployment {deployment_id} is {deployment.status.value}")
            except Conflict:
                continue     # another follower (the pipeline job, a duplicate event) wrote first: read again
        raise Conflict(f"deployment {deployment_id} kept changing; EventBridge will deliver again")


class RetryRunner:
    """The retry_deployment Lambda: what a Scheduler one-time schedule invokes."""

    def __init__(self, deployments: DeploymentService, codedeploy: CodeDeployFollower,
                 pipelines: PipelineRetrier) -> None:
        self._deployments = deployments
        self._codedeploy = codedeploy
        self._pipelines = pipelines

    def run(self, payload: RetryPayload) -> Outcome:
        if payload.kind == "ssm" and payload.deployment_id:
            deployment = self._deployments.retry(payload.deployment_id, payload.attempt)
            if deployment is None:
                return Outcome("duplicate", "the retry was carried out already or is no longer due")
            return Outcome("retried", f"deployment {deployment.deployment_id} attempt {payload.attempt} sent")
        if payload.kind == "codedeploy" and payload.deployment_id:
            return self._codedeploy.retry(payload.deployment_id, payload.attempt, payload.wait)
        if payload.kind == "pipeline" and payload.pipeline and payload.stage and payload.execution_id:
            return self._pipelines.retry(payload.pipeline, payload.stage, payload.execution_id)
        raise InvalidEvent(f"retry payload of kind {payload.kind} lacks the fields it needs")
