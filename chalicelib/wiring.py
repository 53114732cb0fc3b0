"""The composition root: the one place AWS clients are built and services are put together.

Clients come from one botocore session (boto3 adds nothing berth uses to a client, and importing it and the S3
transfer manager it attaches to S3 clients was a tenth of a cold first invocation), use botocore's `standard` retry
mode and bounded timeouts, and are created on first use: services get `LazyClient`s, so an invocation pays for the
clients its path calls and no other (the pipeline job's first invocation never schedules a retry; its continuations
rarely ask EC2 anything).

The calls that carry no idempotency token (SSM SendCommand, CodeDeploy CreateDeployment) go through clients that
make a single attempt: a client that sent one of those again after a lost answer would run it twice, and berth
decides what an unanswered call means (chalicelib.domain.errors.CallUnanswered).

Settings are read once per invocation: a factory that a handler calls reads them (or takes the ones it is given) and
hands them to every factory it calls in turn, so one invocation never reads the environment twice. Factories return
the service's own type; botocore clients stay `Any` because botocore builds their classes at run time from the
service models, so no static type names their operations.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import observability
from chalicelib.domain.command import SHIPPED_SCRIPTS
from chalicelib.settings import Settings

if TYPE_CHECKING:   # imported where used, at run time: a cold start pays only for its own path
    from botocore.session import Session

    from chalicelib.adapters.codedeploy import CodeDeployGateway
    from chalicelib.adapters.scheduler import RetryScheduler
    from chalicelib.adapters.ssm import SsmGateway
    from chalicelib.adapters.store import DeploymentStore
    from chalicelib.domain.job import ArtifactCredentials
    from chalicelib.domain.retry import Breaker
    from chalicelib.observability import Telemetry
    from chalicelib.services.codedeploy_events import CodeDeployRecorder
    from chalicelib.services.codedeploy_retries import CodeDeployRetrier
    from chalicelib.services.deployments import DeploymentService
    from chalicelib.services.lifecycle_hook import LifecycleHookService
    from chalicelib.services.operations import Operations
    from chalicelib.services.pipeline_action_failed import PipelineRetrier
    from chalicelib.services.pipeline_job import PipelineJobService
    from chalicelib.services.retries import Retrier
    from chalicelib.services.retry_deployment import RetryRunner
    from chalicelib.services.rollout import RolloutService
    from chalicelib.services.ssm_command_events import SsmCommandFollower

SCRIPTS_DIR = Path(__file__).parent / "instance_scripts"


def _as_sent(value: Any) -> Any:
    return value


@cache
def _session() -> Session:
    """berth's botocore session. berth reads no timestamp from any AWS answer, so botocore leaves them as AWS sent them
    instead of converting each to a datetime: that was a quarter of the CPU of reading a large fleet's results."""
    import botocore.session

    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
    return session


def _read(settings: Settings | None) -> Settings:
    return Settings.from_env() if settings is None else settings


def client(service: str, region: str | None = None, single_attempt: bool = False, **credentials: Any) -> Any:
    """A client with standard retries (3 more attempts), or with `single_attempt` none at all. `Any`: botocore's
    client classes are made at run time."""
    from botocore.config import Config

    retries = {"mode": "standard", "total_max_attempts": 1} if single_attempt else {"mode": "standard",
                                                                                    "max_attempts": 3}
    config = Config(retries=retries, connect_timeout=5, read_timeout=20)
    return _session().create_client(service, region_name=region or Settings.from_env().region, config=config,
                                    **credentials)


@cache
def _cached_client(service: str, region: str, single_attempt: bool = False) -> Any:
    return client(service, region, single_attempt)


def cached_client(service: str, region: str | None = None) -> Any:
    return _cached_client(service, region or Settings.from_env().region)


class LazyClient:
    """Stands in for `cached_client(service, region)` until a service first touches it: then the client is created (or
    the one already cached is taken) and every attribute comes from it."""

    def __init__(self, service: str, region: str) -> None:
        self._service = service
        self._region = region
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = cached_client(self._service, self._region)
        return getattr(self._client, name)


def single_attempt_client(service: str, region: str | None = None) -> Any:
    """For calls without an idempotency token: never sent twice by the SDK. Built when first used."""
    return _cached_client(service, region or Settings.from_env().region, True)


def ssm_gateway(settings: Settings | None = None) -> SsmGateway:
    from chalicelib.adapters.ssm import SsmGateway

    region = _read(settings).region
    return SsmGateway(LazyClient("ssm", region), lambda: single_attempt_client("ssm", region))


def codedeploy_gateway(settings: Settings | None = None) -> CodeDeployGateway:
    from chalicelib.adapters.codedeploy import CodeDeployGateway

    region = _read(settings).region
    return CodeDeployGateway(LazyClient("codedeploy", region), lambda: single_attempt_client("codedeploy", region))


def instance_scripts() -> dict[str, str]:
    return {name: (SCRIPTS_DIR / name).read_text() for name in SHIPPED_SCRIPTS}


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_deployment_id() -> str:
    return f"d-{utc_now():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def jitter(low: float, high: float) -> float:
    return random.SystemRandom().uniform(low, high)


def _clock(clock: Callable[[], datetime] | None) -> Callable[[], datetime]:
    # Looked up when a factory runs, not bound as a default: a test that moves `utc_now` moves every service built
    # after it.
    return utc_now if clock is None else clock


def deployment_service(settings: Settings | None = None,
                       clock: Callable[[], datetime] | None = None) -> DeploymentService:
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.adapters.ecr import ImageRegistry
    from chalicelib.services.deployments import DeploymentService

    settings = _read(settings)
    telemetry = observability.current()
    return DeploymentService(
        store=store(settings), ssm=ssm_gateway(settings),
        instances=InstanceDirectory(LazyClient("ec2", settings.region)),
        registry=ImageRegistry(lambda region: cached_client("ecr", region)), scripts=instance_scripts(),
        clock=_clock(clock), new_id=new_deployment_id, retries=retrier(settings, telemetry), telemetry=telemetry,
        waves=rollout_service(settings, clock),
    )


def rollout_service(settings: Settings | None = None,
                    clock: Callable[[], datetime] | None = None) -> RolloutService:
    """A rollout in waves: canary, bakes watched by CloudWatch alarms, automatic rollback."""
    from chalicelib.adapters.cloudwatch import AlarmWatch
    from chalicelib.services.rollout import RolloutService

    settings = _read(settings)
    return RolloutService(AlarmWatch(LazyClient("cloudwatch", settings.region)), ssm_gateway(settings),
                          store(settings), _clock(clock))


def breaker(settings: Settings | None = None) -> Breaker:
    from chalicelib.domain.retry import Breaker

    settings = _read(settings)
    return Breaker(settings.breaker_threshold, settings.breaker_window_seconds)


def scheduler(settings: Settings | None = None) -> RetryScheduler | None:
    """The retry scheduler, or None where retries are not configured (no retry Lambda or role ARN)."""
    from chalicelib.adapters.scheduler import RetryScheduler

    settings = _read(settings)
    if not settings.retries_enabled:
        return None
    return RetryScheduler(LazyClient("scheduler", settings.region), settings.retry_function_arn,
                          settings.scheduler_role_arn, settings.schedule_group, settings.schedule_dead_letter_arn)


def retrier(settings: Settings | None = None, telemetry: Telemetry | None = None) -> Retrier:
    """The one retry path every kind of failure goes through."""
    from chalicelib.services.retries import Retrier

    settings = _read(settings)
    return Retrier(store(settings), scheduler(settings), breaker(settings), jitter, telemetry)


def codedeploy_retrier(settings: Settings | None = None,
                       clock: Callable[[], datetime] | None = None) -> CodeDeployRetrier:
    from chalicelib.services.codedeploy_retries import CodeDeployRetrier

    settings = _read(settings)
    telemetry = observability.current()
    return CodeDeployRetrier(store(settings), codedeploy_gateway(settings), ssm_gateway(settings),
                             retrier(settings, telemetry), instance_scripts(), _clock(clock), telemetry)


def codedeploy_recorder(settings: Settings | None = None,
                        clock: Callable[[], datetime] | None = None) -> CodeDeployRecorder:
    from chalicelib.services.codedeploy_events import CodeDeployRecorder

    settings = _read(settings)
    return CodeDeployRecorder(store(settings), codedeploy_gateway(settings), codedeploy_retrier(settings, clock),
                              _clock(clock), settings.codedeploy_groups)


def pipeline_retrier(settings: Settings | None = None,
                     clock: Callable[[], datetime] | None = None) -> PipelineRetrier:
    from chalicelib.adapters.codepipeline import PipelineStages
    from chalicelib.services.pipeline_action_failed import PipelineRetrier

    settings = _read(settings)
    # Stage retries are not deployments: they stay out of the deployments' retry metrics.
    return PipelineRetrier(store(settings), PipelineStages(LazyClient("codepipeline", settings.region)),
                           retrier(settings), settings.retry_pipelines, _clock(clock))


def ssm_command_follower(settings: Settings | None = None) -> SsmCommandFollower:
    from chalicelib.services.ssm_command_events import SsmCommandFollower

    settings = _read(settings)
    return SsmCommandFollower(store(settings), deployment_service(settings))


def retry_runner(settings: Settings | None = None) -> RetryRunner:
    from chalicelib.services.retry_deployment import RetryRunner

    settings = _read(settings)
    return RetryRunner(deployment_service(settings), codedeploy_retrier(settings), pipeline_retrier(settings))


def lifecycle_hook_service(settings: Settings | None = None) -> LifecycleHookService:
    from chalicelib.adapters.http_probe import probe
    from chalicelib.services.lifecycle_hook import LifecycleHookService

    settings = _read(settings)
    return LifecycleHookService(store(settings), codedeploy_gateway(settings), probe)


def store(settings: Settings | None = None) -> DeploymentStore:
    from chalicelib.adapters.store import DeploymentStore

    settings = _read(settings)
    return DeploymentStore(LazyClient("dynamodb", settings.region), settings.table_name)


def artifact_s3_client(credentials: ArtifactCredentials | None, region: str | None = None) -> Any:
    """An S3 client signed with the job's artifact credentials (the Lambda's own role may not read the bucket)."""
    if credentials is None:
        return cached_client("s3", region)
    return client("s3", region, aws_access_key_id=credentials.access_key_id.get_secret_value(),
                  aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
                  aws_session_token=credentials.session_token.get_secret_value() if credentials.session_token else None)


def pipeline_job_service(settings: Settings | None = None,
                         clock: Callable[[], datetime] | None = None) -> PipelineJobService:
    from chalicelib.adapters.artifacts import ArtifactReader
    from chalicelib.adapters.codepipeline import JobReporter
    from chalicelib.services.pipeline_job import PipelineJobService

    settings = _read(settings)
    region = settings.region
    return PipelineJobService(
        deployments=deployment_service(settings, clock), store=store(settings),
        artifacts=ArtifactReader(lambda credentials: artifact_s3_client(credentials, region)),
        reporter=JobReporter(LazyClient("codepipeline", region)), clock=_clock(clock),
        lock_wait_seconds=settings.lock_wait_seconds,
    )


def operations(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> Operations:
    """The REST API's use cases: redeploy, roll back, cancel, and the reads."""
    from chalicelib.services.operations import Operations

    settings = _read(settings)
    return Operations(store=store(settings), deployments=deployment_service(settings, clock),
                      ssm=ssm_gateway(settings), clock=_clock(clock))


def reset_clients() -> None:
    """Forget cached clients and the session (tests switch endpoints and credentials between cases)."""
    _cached_client.cache_clear()
    _session.cache_clear()


if TYPE_CHECKING:
    from chalicelib.services.plan import Planner


def planner(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> Planner:
    """`POST /targets/{name}/plan`: reads only, through the adapters a deployment uses (services/plan.py)."""
    from chalicelib.adapters.cloudwatch import AlarmWatch
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.services.plan import Planner

    settings = _read(settings)
    return Planner(store(settings), deployment_service(settings, clock).resolve_revision,
                   InstanceDirectory(LazyClient("ec2", settings.region)), ssm_gateway(settings),
                   AlarmWatch(LazyClient("cloudwatch", settings.region)), _clock(clock))
