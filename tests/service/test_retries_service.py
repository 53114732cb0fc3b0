"""Automatic retries of SSM deployments on fakes: a transient failure becomes one schedule, which sends attempt 2."""

from __future__ import annotations

from chalicelib.domain.deployment import DeploymentStatus
from chalicelib.domain.results import Continue, Succeed
from localaws import InstanceOutcome
from tests.fakes.scheduler import FakeRetryScheduler
from tests.service.conftest import ARTIFACT_KEY, TAGS, Bench, spec


def test_a_timed_out_attempt_is_retried_once_by_its_schedule() -> None:
    scheduler = FakeRetryScheduler()
    bench = Bench(scheduler=scheduler)
    bench.artifacts.files[ARTIFACT_KEY] = {}
    bench.registry.push("web", "v1")
    bench.fleet.launch(2, TAGS)
    bench.ssm.set_default_outcome(InstanceOutcome(status="TimedOut", response_code=-1))
    token = bench.pipeline.handle(bench.job("job-1", spec()))
    assert isinstance(token, Continue)

    waiting = bench.pipeline.handle(bench.job("job-1-2", token=token.token))

    assert isinstance(waiting, Continue) and bench.store.get_deployment("d-1").status == DeploymentStatus.RETRYING
    [(name, schedule)] = scheduler.schedules.items()
    assert schedule.payload == {"kind": "ssm", "deployment_id": "d-1", "attempt": 2}
    assert schedule.at > bench.clock()
    lock = bench.store.get_lock("web-prod")
    assert lock is not None and lock.deployment_id == "d-1" and lock.expires_at > schedule.at.timestamp()

    failed_at = int(bench.clock().timestamp())
    bench.ssm.set_default_outcome(InstanceOutcome())
    bench.clock.now = schedule.at
    payload = scheduler.fire(name)
    retried = bench.deployments.retry(payload["deployment_id"], payload["attempt"])
    assert bench.deployments.retry(payload["deployment_id"], payload["attempt"]) is None    # a duplicate firing
    done = bench.pipeline.handle(bench.job("job-1-3", token=token.token))

    assert retried is not None and len(retried.attempts) == 2 and len(bench.ssm.runs) == 2
    assert isinstance(done, Succeed) and done.external_id == "d-1"
    record = bench.store.get_target("web-prod")
    assert record is not None and record.recent_failures == (failed_at,) and record.breaker_open_since is None
