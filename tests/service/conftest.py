"""Service tests on the in-memory fakes (tests/fakes): the real services, no embedded AWS, a clock passed in.

Each fake is held to its adapter by tests/contracts; what these tests add is the services' own decisions, fast
enough for `make test-fast`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.domain.job import PipelineJob, parse_job_event
from chalicelib.domain.results import JobResult
from chalicelib.domain.retry import Breaker
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.operations import Operations
from chalicelib.services.pipeline_job import PipelineJobService
from chalicelib.services.retries import Retrier
from chalicelib.wiring import instance_scripts
from tests.events import pipeline_job_event
from tests.fakes.clock import Clock
from tests.fakes.ecr import FakeImageRegistry
from tests.fakes.fleet import FakeInstanceDirectory, Fleet
from tests.fakes.pipeline import FakeArtifacts, FakeJobReporter
from tests.fakes.scheduler import FakeRetryScheduler
from tests.fakes.ssm import FakeSsmGateway
from tests.fakes.store import FakeDeploymentStore

TAGS = {"app": "web", "env": "prod"}
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ARTIFACT_KEY = "pipeline/BuildArtif/abc123"
LOCK_WAIT_SECONDS = 600


def jid(name: str) -> str:
    """CodePipeline job ids are UUIDs (the reporter refuses anything else); a name makes a test's ids readable."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": "web-prod",
        "instances": {"tags": TAGS},
        "container": {"name": "web", "ports": ["5000:5000"]},
        "rollout": {"max_concurrency": "100%", "max_errors": "0"},
        "image": f"{REGISTRY}/web:v1",
    }
    body.update(overrides)
    return body


@dataclass
class Bench:
    """The services under test and every fake they stand on, sharing one clock."""

    clock: Clock = field(default_factory=Clock)
    fleet: Fleet = field(default_factory=Fleet)
    store: FakeDeploymentStore = field(default_factory=FakeDeploymentStore)
    registry: FakeImageRegistry = field(default_factory=FakeImageRegistry)
    artifacts: FakeArtifacts = field(default_factory=FakeArtifacts)
    reporter: FakeJobReporter = field(default_factory=FakeJobReporter)
    scheduler: FakeRetryScheduler | None = None
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ssm = FakeSsmGateway(self.fleet, self.clock)
        self.deployments = DeploymentService(
            store=self.store, ssm=self.ssm, instances=FakeInstanceDirectory(self.fleet), registry=self.registry,
            scripts=instance_scripts(), clock=self.clock, new_id=self._new_id,
            retries=Retrier(self.store, self.scheduler, Breaker(), lambda low, high: high))
        self.pipeline = PipelineJobService(self.deployments, self.store, self.artifacts, self.reporter, self.clock,
                                           LOCK_WAIT_SECONDS)
        self.operations = Operations(self.store, self.deployments, self.ssm, self.clock,
                                     FakeInstanceDirectory(self.fleet))

    def _new_id(self) -> str:
        self.ids.append(f"d-{len(self.ids) + 1}")
        return self.ids[-1]

    def job(self, name: str, params: dict[str, Any] | str | None = None, token: str | None = None) -> PipelineJob:
        """The job CodePipeline sends: a first invocation, or with `token` a continued one (a job of its own: each
        continuation comes with a new job id)."""
        user_parameters = json.dumps(spec()) if params is None else params if isinstance(params, str) else \
            json.dumps(params)
        event = "codepipeline_job_continuation" if token else "codepipeline_job"
        return parse_job_event(pipeline_job_event(event, job_id=jid(name), user_parameters=user_parameters,
                                                  bucket="artifacts", key=ARTIFACT_KEY, token=token))

    def results(self, name: str) -> list[JobResult]:
        return self.reporter.results.get(jid(name), [])


@pytest.fixture
def bench() -> Bench:
    bench = Bench()
    bench.artifacts.files[ARTIFACT_KEY] = {}
    bench.registry.push("web", "v1")
    return bench
