"""Automatic retries of SSM deployments on fakes: a transient failure becomes one schedule, which sends attempt 2."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.deployment import DeploymentStatus
from chalicelib.domain.errors import TargetBusy
from chalicelib.domain.results import Continue, Succeed
from localaws import InstanceOutcome
from tests.fakes.scheduler import FakeRetryScheduler
from tests.service.conftest import ARTIFACT_KEY, REGISTRY, TAGS, Bench, spec


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


# A retry and the target's lock -------------------------------------------------------------------------------------
V2 = f"{REGISTRY}/web:v2"


def retrying(name: str, **overrides: Any) -> tuple[Bench, FakeRetryScheduler, str]:
    """A pipeline deployment whose first attempt failed to pull (exit 21, transient): a retry is scheduled."""
    scheduler = FakeRetryScheduler()
    bench = Bench(scheduler=scheduler)
    bench.artifacts.files[ARTIFACT_KEY] = {}
    bench.registry.push("web", "v1")
    bench.registry.push("web", "v2")
    (instance,) = bench.fleet.launch(1, TAGS)
    bench.ssm.set_outcome(instance, InstanceOutcome(status="Failed", response_code=21))
    started = bench.pipeline.handle(bench.job(name, spec(**overrides)))
    assert isinstance(started, Continue) and started.external_id is not None
    bench.deployments.follow(started.external_id)
    assert bench.store.get_deployment(started.external_id).status == DeploymentStatus.RETRYING
    bench.ssm.set_outcome(instance, InstanceOutcome())
    return bench, scheduler, started.external_id


def fire(bench: Bench, scheduler: FakeRetryScheduler) -> None:
    for name in list(scheduler.schedules):
        payload = scheduler.fire(name)
        bench.deployments.retry(payload["deployment_id"], payload["attempt"])


def test_a_retry_gives_up_when_a_newer_deployment_took_the_target_since() -> None:
    """The retry fires after its lock expired and another deployment shipped a newer digest: it must not send the
    old image again, nor record the old deployment as the target's revision."""
    bench, scheduler, old = retrying("superseded")
    bench.clock.advance(hours=3)            # past any retry delay and any lock berth took for it
    newer = bench.operations.redeploy("web-prod", V2, None, False, "alice").deployment_id
    assert bench.operations.deployment(newer).deployment.status == DeploymentStatus.SUCCEEDED

    fire(bench, scheduler)

    record = bench.store.get_deployment(old)
    assert record.status == DeploymentStatus.FAILED and len(record.attempts) == 1
    assert "gave-up" in [d.action for d in record.history] and newer in record.message
    assert len(bench.ssm.runs) == 2
    target = bench.store.get_target("web-prod")
    assert target is not None and target.current_revision is not None
    assert target.current_revision.digest == bench.registry.digests[("web", "v2")]
    assert bench.store.get_lock("web-prod") is None


def test_a_retry_firing_while_a_newer_deployment_runs_sends_nothing() -> None:
    bench, scheduler, old = retrying("superseded-running")
    bench.clock.advance(hours=3)
    bench.ssm.set_outcome(bench.fleet.running()[0], InstanceOutcome(polls_before_done=100))
    newer = bench.operations.redeploy("web-prod", V2, None, False, "alice").deployment_id

    fire(bench, scheduler)

    record = bench.store.get_deployment(old)
    assert record.status == DeploymentStatus.FAILED and len(record.attempts) == 1 and newer in record.message
    assert len(bench.ssm.runs) == 2
    lock = bench.store.get_lock("web-prod")
    assert lock is not None and lock.deployment_id == newer


def test_a_scheduled_retry_keeps_the_target_until_it_fires() -> None:
    """A retry may be scheduled up to the policy's cap ahead, longer than the lock's command timeout + slack: the
    lock is kept until the retry has fired, so nobody deploys on top of a deployment that is not over."""
    bench, _, old = retrying("long-backoff", retry={"max_attempts": 3, "base_seconds": 3600, "cap_seconds": 7200},
                             rollout={"max_concurrency": "1", "max_errors": "0", "timeout_seconds": 600})
    lock = bench.store.get_lock("web-prod")
    assert lock is not None and lock.deployment_id == old

    bench.clock.advance(minutes=50)         # the lock taken at the start (600 s + 900 s) lapsed; the retry is ahead
    with pytest.raises(TargetBusy, match=old):
        bench.operations.redeploy("web-prod", V2, None, False, "alice")
    assert len(bench.ssm.runs) == 1
