"""The composition root: the one place services are put together, from the clients chalicelib.clients builds.

Settings are read once per invocation: a factory that a handler calls reads them (or takes the ones it is given) and
hands them to every factory it calls in turn, so one invocation never reads the environment twice. Factories return
the service's own type, and build what a service needs only when it is first used (clients are `LazyClient`s,
adapters and services are imported inside the factory): a cold start pays only for its own path.
"""

from __future__ import annotations

import random
import secrets
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib import observability
from chalicelib.clients import (
    LazyClient,
    artifact_s3_client,
    assumed_role_client,
    cached_client,
    single_attempt_client,
)
from chalicelib.domain.command import SHIPPED_SCRIPTS
from chalicelib.settings import Settings

if TYPE_CHECKING:   # imported where used, at run time: a cold start pays only for its own path
    from chalicelib.adapters.codedeploy import CodeDeployGateway
    from chalicelib.adapters.scheduler import RetryScheduler
    from chalicelib.adapters.ssm import SsmGateway
    from chalicelib.adapters.store import DeploymentStore
    from chalicelib.adapters.sts import RoleCredentials
    from chalicelib.domain.deployment import Deployment
    from chalicelib.domain.retry import Breaker
    from chalicelib.domain.spec.location import Home, LocationSpec
    from chalicelib.observability import Telemetry
    from chalicelib.services.codedeploy_events import CodeDeployRecorder
    from chalicelib.services.codedeploy_hook import LifecycleHookService
    from chalicelib.services.codedeploy_retries import CodeDeployRetrier
    from chalicelib.services.container_exec import ContainerExec
    from chalicelib.services.container_logs import ContainerLogs
    from chalicelib.services.deployments import DeploymentService
    from chalicelib.services.instance_joins import InstanceJoins
    from chalicelib.services.join_ends import JoinEnds
    from chalicelib.services.looks import Looks
    from chalicelib.services.notifier import Notifier
    from chalicelib.services.operations import Operations
    from chalicelib.services.pipeline_action_failed import PipelineRetrier
    from chalicelib.services.pipeline_job import PipelineJobService
    from chalicelib.services.places import Located, TargetAws
    from chalicelib.services.plan import Planner
    from chalicelib.services.retries import Retrier
    from chalicelib.services.retry_deployment import RetryRunner
    from chalicelib.services.rollout import RolloutService
    from chalicelib.services.ssm_command_events import SsmCommandFollower

SCRIPTS_DIR = Path(__file__).parent / "instance_scripts"


def _read(settings: Settings | None) -> Settings:
    return Settings.from_env() if settings is None else settings


def ssm_gateway(settings: Settings | None = None) -> SsmGateway:
    from chalicelib.adapters.ssm import SsmGateway

    region = _read(settings).region
    return SsmGateway(LazyClient("ssm", region), lambda: single_attempt_client("ssm", region))


class Elsewhere:
    """The gateways of targets that live in other accounts or regions (services/places.py), for one invocation.

    A place's clients are built on their first call, and the role is assumed then (once per role and external id in
    an invocation, with the session name of that first call): a target in berth's own account never reaches here,
    so it costs no STS call. The credentials live only in this object and the clients it built; one exists per
    Settings object, which wiring reads once per invocation, so nothing outlives the invocation.
    """

    def __init__(self, region: str) -> None:
        self._region = region
        self._credentials: dict[tuple[str, str | None], RoleCredentials] = {}
        self._places: dict[tuple[str, str | None, str], TargetAws] = {}
        self._clients: dict[tuple[str, str | None, str, str, bool], object] = {}

    def __call__(self, location: LocationSpec, session: str) -> TargetAws:
        region = location.region or self._region
        key = (location.role_arn, location.external_id, region)
        if key not in self._places:
            self._places[key] = self._place(location, session, region)
        return self._places[key]

    def _place(self, location: LocationSpec, session: str, region: str) -> TargetAws:
        from chalicelib.adapters.autoscaling import LifecycleActions
        from chalicelib.adapters.cloudwatch import AlarmWatch
        from chalicelib.adapters.ec2 import InstanceDirectory
        from chalicelib.adapters.elbv2 import TargetGroups
        from chalicelib.adapters.ssm import SsmGateway
        from chalicelib.services.places import TargetAws

        def lazy(service: str) -> LazyClient:
            return LazyClient(service, region, lambda: self._client(location, session, service, region, False))

        return TargetAws(
            ssm=SsmGateway(lazy("ssm"), lambda: self._client(location, session, "ssm", region, True)),
            instances=InstanceDirectory(lazy("ec2")), alarms=AlarmWatch(lazy("cloudwatch")),
            groups=TargetGroups(lazy("elbv2")), lifecycle=LifecycleActions(lazy("autoscaling")))

    def _client(self, location: LocationSpec, session: str, service: str, region: str, single_attempt: bool) -> object:
        key = (location.role_arn, location.external_id, region, service, single_attempt)
        if key not in self._clients:
            self._clients[key] = assumed_role_client(service, region, self._assumed(location, session),
                                                     single_attempt)
        return self._clients[key]

    def _assumed(self, location: LocationSpec, session: str) -> RoleCredentials:
        from chalicelib.adapters.sts import RoleAssumer

        key = (location.role_arn, location.external_id)
        if key not in self._credentials:
            self._credentials[key] = RoleAssumer(cached_client("sts", self._region)).assume(location, session)
        return self._credentials[key]


_ELSEWHERE: dict[int, Elsewhere] = {}


def located(settings: Settings | None = None) -> Located:
    """The factory of located targets' gateways for this invocation: one per Settings object (see Elsewhere)."""
    settings = _read(settings)
    key = id(settings)
    if key not in _ELSEWHERE:
        _ELSEWHERE[key] = Elsewhere(settings.region)
        weakref.finalize(settings, _ELSEWHERE.pop, key, None)
    return _ELSEWHERE[key]


def home(settings: Settings | None = None) -> Home:
    """berth's own account and region: where targets without a location live, and their events come from."""
    from chalicelib.domain.spec.location import Home

    settings = _read(settings)
    return Home(settings.account_id, settings.region)


def codedeploy_gateway(settings: Settings | None = None) -> CodeDeployGateway:
    from chalicelib.adapters.codedeploy import CodeDeployGateway

    region = _read(settings).region
    return CodeDeployGateway(LazyClient("codedeploy", region), lambda: single_attempt_client("codedeploy", region))


def instance_scripts() -> dict[str, str]:
    """The scripts the SSM command ships, less their comment lines (chalicelib/domain/shipped_scripts.py)."""
    from chalicelib.domain.shipped_scripts import without_comment_lines

    return {name: without_comment_lines((SCRIPTS_DIR / name).read_text()) for name in SHIPPED_SCRIPTS}


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
        waves=rollout_service(settings, clock), looks=looks(settings, clock),
        on_end=_joins_told(settings, clock), notifier=notifier(settings, telemetry), located=located(settings),
    )


def notifier(settings: Settings | None = None, telemetry: Telemetry | None = None) -> Notifier:
    """berth's own events, onto the bus BERTH_EVENT_BUS names (services/notifier.py)."""
    from chalicelib.adapters.events import EventPublisher
    from chalicelib.services.notifier import Notifier

    settings = _read(settings)
    return Notifier(EventPublisher(LazyClient("events", settings.region), settings.event_bus), settings.region,
                    telemetry)


def looks(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> Looks:
    """One-time schedules that look again at a REST rollout waiting in a bake or a halt (services/looks.py)."""
    from chalicelib.services.looks import Looks

    return Looks(scheduler(_read(settings)), _clock(clock))


def _joins_told(settings: Settings, clock: Callable[[], datetime] | None) -> Callable[[Deployment], None]:
    """What a deployment's end tells the new instances' joins: a join deployment's end completes its join."""
    def told(deployment: Deployment) -> None:
        if deployment.trigger == "join":
            join_ends(settings, clock).deployment_ended(deployment)
    return told


def join_ends(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> JoinEnds:
    from chalicelib.adapters.autoscaling import LifecycleActions
    from chalicelib.services.join_ends import JoinEnds

    settings = _read(settings)
    return JoinEnds(store(settings), LifecycleActions(LazyClient("autoscaling", settings.region)),
                    scheduler(settings), _clock(clock), located=located(settings))


def instance_joins(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> InstanceJoins:
    """New instances join their target at its current revision (services/instance_joins.py)."""
    from chalicelib.adapters.autoscaling import LifecycleActions
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.services.instance_joins import InstanceJoins

    settings = _read(settings)
    return InstanceJoins(store(settings), InstanceDirectory(LazyClient("ec2", settings.region)),
                         ssm_gateway(settings), lambda: deployment_service(settings, clock),
                         LifecycleActions(LazyClient("autoscaling", settings.region)), join_ends(settings, clock),
                         _clock(clock), located=located(settings), home=home(settings))


def rollout_service(settings: Settings | None = None,
                    clock: Callable[[], datetime] | None = None) -> RolloutService:
    """A rollout in waves: canary, bakes watched by CloudWatch alarms, load balancer draining, automatic rollback."""
    from chalicelib.adapters.cloudwatch import AlarmWatch
    from chalicelib.adapters.elbv2 import TargetGroups
    from chalicelib.services.draining import Draining
    from chalicelib.services.rollout import RolloutService

    settings = _read(settings)
    return RolloutService(AlarmWatch(LazyClient("cloudwatch", settings.region)), ssm_gateway(settings),
                          store(settings), _clock(clock),
                          draining=Draining(TargetGroups(LazyClient("elbv2", settings.region)), store(settings),
                                            _clock(clock), located(settings)),
                          located=located(settings))


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
    return Retrier(store(settings), scheduler(settings), breaker(settings), jitter, telemetry,
                   notifier(settings, telemetry))


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
                              _clock(clock), settings.codedeploy_groups, settings.account_id)


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
    return SsmCommandFollower(store(settings), deployment_service(settings), home(settings))


def retry_runner(settings: Settings | None = None) -> RetryRunner:
    from chalicelib.services.retry_deployment import RetryRunner

    settings = _read(settings)
    return RetryRunner(deployment_service(settings), codedeploy_retrier(settings), pipeline_retrier(settings),
                       lambda look: instance_joins(settings).look(look))


def lifecycle_hook_service(settings: Settings | None = None) -> LifecycleHookService:
    from chalicelib.adapters.http_probe import probe
    from chalicelib.services.codedeploy_hook import LifecycleHookService

    settings = _read(settings)
    return LifecycleHookService(store(settings), codedeploy_gateway(settings), probe)


def store(settings: Settings | None = None) -> DeploymentStore:
    from chalicelib.adapters.store import DeploymentStore

    settings = _read(settings)
    return DeploymentStore(LazyClient("dynamodb", settings.region), settings.table_name)


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
    """The REST API's use cases: redeploy, roll back, sync, cancel, and the reads."""
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.services.operations import Operations

    settings = _read(settings)
    return Operations(store=store(settings), deployments=deployment_service(settings, clock),
                      ssm=ssm_gateway(settings), clock=_clock(clock),
                      instances=InstanceDirectory(LazyClient("ec2", settings.region)), notifier=notifier(settings),
                      located=located(settings))



def planner(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> Planner:
    """`POST /targets/{name}/plan`: reads only, through the adapters a deployment uses (services/plan.py)."""
    from chalicelib.adapters.cloudwatch import AlarmWatch
    from chalicelib.adapters.ec2 import InstanceDirectory
    from chalicelib.services.plan import Planner

    settings = _read(settings)
    return Planner(store(settings), deployment_service(settings, clock).resolve_revision,
                   InstanceDirectory(LazyClient("ec2", settings.region)), ssm_gateway(settings),
                   AlarmWatch(LazyClient("cloudwatch", settings.region)), _clock(clock), located(settings))


def container_logs(settings: Settings | None = None) -> ContainerLogs:
    """`berth logs`: `docker logs` on a target's instances over SSM (services/container_logs.py)."""
    from chalicelib.services.container_logs import ContainerLogs

    settings = _read(settings)
    return ContainerLogs(store(settings), ssm_gateway(settings), settings.command_output_bucket or None,
                         located(settings))


def container_exec(settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> ContainerExec:
    """`berth exec`: a one-off container of a target's current image, audited (services/container_exec.py)."""
    from chalicelib.services.container_exec import ContainerExec

    settings = _read(settings)
    return ContainerExec(store(settings), ssm_gateway(settings), instance_scripts(), lambda: secrets.token_hex(6),
                         _clock(clock), settings.command_output_bucket or None, located(settings))
