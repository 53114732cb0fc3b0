"""The composition root: the one place AWS clients are built and services are put together.

Clients come from one botocore session (boto3 adds nothing berth uses to a client, and importing it and the S3
transfer manager it attaches to S3 clients was a tenth of a cold first invocation), use botocore's `standard` retry
mode and bounded timeouts, and are created on first use: services get `LazyClient`s, so an invocation pays for the
clients its path calls and no other (the pipeline job's first invocation never schedules a retry; its continuations
rarely ask EC2 anything).

The calls that carry no idempotency token (SSM SendCommand, CodeDeploy CreateDeployment) go through clients that
make a single attempt: a client that sent one of those again after a lost answer would run it twice, and berth
decides what an unanswered call means (chalicelib.domain.errors.CallUnanswered).
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib import observability
from chalicelib.domain.command import SHIPPED_SCRIPTS
from chalicelib.settings import Settings

SCRIPTS_DIR = Path(__file__).parent / "instance_scripts"


def _as_sent(value: Any) -> Any:
    return value


@cache
def _session() -> Any:
    """berth's botocore session. berth reads no timestamp from any AWS answer, so botocore leaves them as AWS sent them
    instead of converting each to a datetime: that was a quarter of the CPU of reading a large fleet's results."""
    import botocore.session

    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
    return session


def client(service: str, region: str | None = None, single_attempt: bool = False, **credentials: Any) -> Any:
    """A client with standard retries (3 more attempts), or with `single_attempt` none at all."""
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
    """Stands in for `cached_client(service)` until a service first touches it: then the client is created (or the one
    already cached is taken) and every attribute comes from it."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = cached_client(self._service)
        return getattr(self._client, name)


def single_attempt_client(service: str) -> Any:
    """For calls without an idempotency token: never sent twice by the SDK. Built when first used."""
    return _cached_client(service, Settings.from_env().region, True)


def ssm_gateway() -> Any:
    from chalicelib.adapters.ssm import SsmGateway

    return SsmGateway(LazyClient("ssm"), lambda: single_attempt_client("ssm"))


def codedeploy_gateway() -> Any:
    from chalicelib.adapters.codedeploy import CodeDeployGateway

    return CodeDeployGateway(LazyClient("codedeploy"), lambda: single_attempt_client("codedeploy"))


def instance_scripts() -> dict[str, str]:
    return {name: (SCRIPTS_DIR / name).read_text() for name in SHIPPED_SCRIPTS}


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_deployment_id() -> str:
    return f"d-{utc_now():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


def deployment_service() -> Any:
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.adapters.ecr import ImageRegistry
    from chalicelib.services.deployments import DeploymentService

    return DeploymentService(
        store=store(), ssm=ssm_gateway(), instances=InstanceDirectory(LazyClient("ec2")),
        registry=ImageRegistry(lambda region: cached_client("ecr", region)), scripts=instance_scripts(),
        clock=utc_now, new_id=new_deployment_id, retries=ssm_retries(), telemetry=observability.current(),
        waves=rollout_service(),
    )


def rollout_service() -> Any:
    """A rollout in waves: canary, bakes watched by CloudWatch alarms, automatic rollback."""
    from chalicelib.adapters.cloudwatch import AlarmWatch
    from chalicelib.services.rollout import RolloutService

    return RolloutService(AlarmWatch(LazyClient("cloudwatch")), ssm_gateway(), store(), utc_now)


def jitter(low: float, high: float) -> float:
    return random.SystemRandom().uniform(low, high)


def breaker_policy() -> Any:
    from chalicelib.services.retries import BreakerPolicy

    settings = Settings.from_env()
    return BreakerPolicy(settings.breaker_threshold, settings.breaker_window_seconds)


def scheduler() -> Any:
    """The retry scheduler, or None where retries are not configured (no retry Lambda or role ARN)."""
    from chalicelib.adapters.scheduler import RetryScheduler

    settings = Settings.from_env()
    if not settings.retries_enabled:
        return None
    return RetryScheduler(LazyClient("scheduler"), settings.retry_function_arn, settings.scheduler_role_arn,
                          settings.schedule_group, settings.schedule_dead_letter_arn)


def ssm_retries() -> Any:
    from chalicelib.services.retries import SsmRetries

    return SsmRetries(store(), scheduler(), breaker_policy(), jitter)


def codedeploy_follower() -> Any:
    from chalicelib.services.codedeploy_events import CodeDeployFollower

    return CodeDeployFollower(store(), codedeploy_gateway(), ssm_gateway(),
                              scheduler(), instance_scripts(), utc_now, jitter,
                              Settings.from_env().codedeploy_groups, breaker_policy(), observability.current())


def pipeline_retrier() -> Any:
    from chalicelib.domain.retry import RetryPolicy
    from chalicelib.services.pipeline_retries import PipelineRetrier

    return PipelineRetrier(store(), LazyClient("codepipeline"), scheduler(), Settings.from_env().retry_pipelines,
                           RetryPolicy(), utc_now, jitter)


def ssm_command_follower() -> Any:
    from chalicelib.services.event_handlers import SsmCommandFollower

    return SsmCommandFollower(store(), deployment_service())


def retry_runner() -> Any:
    from chalicelib.services.event_handlers import RetryRunner

    return RetryRunner(deployment_service(), codedeploy_follower(), pipeline_retrier())


def lifecycle_hook_service() -> Any:
    from chalicelib.adapters.http_probe import probe
    from chalicelib.services.lifecycle_hook import LifecycleHookService

    return LifecycleHookService(store(), codedeploy_gateway(), probe)


def store() -> Any:
    from chalicelib.adapters.store import DeploymentStore

    return DeploymentStore(LazyClient("dynamodb"), Settings.from_env().table_name)


def artifact_s3_client(credentials: Any) -> Any:
    """An S3 client signed with the job's artifact credentials (the Lambda's own role may not read the bucket)."""
    if credentials is None:
        return cached_client("s3")
    return client("s3", aws_access_key_id=credentials.access_key_id.get_secret_value(),
                  aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
                  aws_session_token=credentials.session_token.get_secret_value() if credentials.session_token else None)


def pipeline_job_service() -> Any:
    from chalicelib.adapters.artifacts import ArtifactReader
    from chalicelib.adapters.codepipeline import JobReporter
    from chalicelib.services.pipeline_job import PipelineJobService

    return PipelineJobService(
        deployments=deployment_service(), store=store(), artifacts=ArtifactReader(artifact_s3_client),
        reporter=JobReporter(LazyClient("codepipeline")), clock=utc_now,
        lock_wait_seconds=Settings.from_env().lock_wait_seconds,
    )


def operations() -> Any:
    """The REST API's use cases: redeploy, roll back, cancel, and the reads."""
    from chalicelib.services.operations import Operations

    return Operations(store=store(), deployments=deployment_service(), ssm=ssm_gateway(),
                      clock=utc_now)


def reset_clients() -> None:
    """Forget cached clients and the session (tests switch endpoints and credentials between cases)."""
    _cached_client.cache_clear()
    _session.cache_clear()
