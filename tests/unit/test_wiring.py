"""The composition root: each factory returns its service and reads the settings once, or not at all when given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.services.codedeploy_events import CodeDeployRecorder
from chalicelib.services.codedeploy_hook import LifecycleHookService
from chalicelib.services.codedeploy_retries import CodeDeployRetrier
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.operations import Operations
from chalicelib.services.pipeline_action_failed import PipelineRetrier
from chalicelib.services.pipeline_job import PipelineJobService
from chalicelib.services.plan import Planner
from chalicelib.services.retries import Retrier
from chalicelib.services.retry_deployment import RetryRunner
from chalicelib.services.ssm_command_events import SsmCommandFollower
from chalicelib.settings import Settings

ENV = {"BERTH_TABLE": "berth-test", "AWS_REGION": "eu-west-1", "BERTH_RETRY_FUNCTION_ARN": "arn:function",
       "BERTH_SCHEDULER_ROLE_ARN": "arn:role"}
SETTINGS = Settings.from_env(ENV)
FACTORIES: dict[Callable[..., Any], type] = {
    wiring.pipeline_job_service: PipelineJobService, wiring.operations: Operations, wiring.retry_runner: RetryRunner,
    wiring.ssm_command_follower: SsmCommandFollower, wiring.codedeploy_recorder: CodeDeployRecorder,
    wiring.codedeploy_retrier: CodeDeployRetrier, wiring.retrier: Retrier, wiring.pipeline_retrier: PipelineRetrier,
    wiring.lifecycle_hook_service: LifecycleHookService,
    wiring.deployment_service: DeploymentService, wiring.scheduler: RetryScheduler, wiring.planner: Planner,
}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """Each read of the environment's settings, counted (the environment being ENV)."""
    counted: list[None] = []
    read = Settings.from_env

    def from_env(env: Any = None) -> Settings:
        counted.append(None)
        return read(ENV)

    monkeypatch.setattr(Settings, "from_env", from_env)
    return counted


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda factory: factory.__name__)
def test_a_handler_s_factory_reads_the_settings_once(factory: Callable[..., Any], reads: list[None]) -> None:
    assert isinstance(factory(), FACTORIES[factory])
    assert len(reads) == 1


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda factory: factory.__name__)
def test_given_settings_a_factory_never_reads_the_environment(factory: Callable[..., Any],
                                                              reads: list[None]) -> None:
    assert isinstance(factory(SETTINGS), FACTORIES[factory])
    assert reads == []


def test_no_scheduler_without_the_retry_function_and_role() -> None:
    assert wiring.scheduler(Settings.from_env({"BERTH_TABLE": "berth-test"})) is None
