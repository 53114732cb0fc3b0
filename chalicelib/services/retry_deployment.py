"""The retry_deployment Lambda: what an EventBridge Scheduler one-time schedule invokes, with the retry's payload
(parsed at the edge into one task per kind, chalicelib.domain.retry_payload). Each kind's service carries it out; a
look at a waiting rollout (services/looks.py) is a refresh of the deployment."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.domain.errors import DeploymentNotFound
from chalicelib.domain.retry_payload import CodeDeployRetry, JoinLook, LookAgain, PipelineStageRetry, SsmRetry
from chalicelib.services.codedeploy_retries import CodeDeployRetrier
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.looks import LookNotDue, Looks
from chalicelib.services.outcome import Outcome
from chalicelib.services.pipeline_action_failed import PipelineRetrier


class RetryRunner:
    def __init__(self, deployments: DeploymentService, codedeploy: CodeDeployRetrier,
                 pipelines: PipelineRetrier, joins: Callable[[JoinLook], Outcome] | None = None) -> None:
        self._deployments = deployments
        self._codedeploy = codedeploy
        self._pipelines = pipelines
        self._joins = joins

    def run(self, task: SsmRetry | CodeDeployRetry | PipelineStageRetry | LookAgain | JoinLook) -> Outcome:
        if isinstance(task, LookAgain):
            return self._look(task)
        if isinstance(task, JoinLook):
            if self._joins is None:
                return Outcome("ignored", "this retry runner was built without instance joins")
            return self._joins(task)
        if isinstance(task, CodeDeployRetry):
            return self._codedeploy.retry(task)
        if isinstance(task, PipelineStageRetry):
            return self._pipelines.retry(task)
        held = self._deployments.held_by_freeze(task.deployment_id, task.attempt)
        if held is not None:
            return Outcome("held", f"deployment {task.deployment_id} attempt {task.attempt}: the target is frozen; "
                                   f"the retry looks again at {held.isoformat()}")
        deployment = self._deployments.retry(task.deployment_id, task.attempt)
        if deployment is None:
            return Outcome("duplicate", "the retry was carried out already or is no longer due")
        return Outcome("retried", f"deployment {deployment.deployment_id} attempt {task.attempt} sent")

    def _look(self, task: LookAgain) -> Outcome:
        try:
            deployment = self._deployments.follow(task.deployment_id, Looks.accept(task), look=task).deployment
        except (LookNotDue, DeploymentNotFound) as exc:
            return Outcome("ignored", exc.message)
        label = f", {deployment.rollout.label()}" if deployment.rollout is not None else ""
        return Outcome("looked", f"deployment {deployment.deployment_id} is {deployment.status.value}{label}")
