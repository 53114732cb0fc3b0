"""LifecycleHookService on fakes: every hook execution gets exactly one status, Succeeded only when checks pass."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.http_probe import ProbeResult
from chalicelib.domain.deployment import Revision
from chalicelib.domain.events import LifecycleHookEvent
from chalicelib.domain.spec import TargetSpec
from chalicelib.services.codedeploy_hook import LifecycleHookService
from tests.fakes.codedeploy import FakeCodeDeploy
from tests.fakes.store import FakeDeploymentStore
from tests.service.conftest import spec

URL = "http://web.internal/health"
HOOK = LifecycleHookEvent(DeploymentId="d-ECS1", LifecycleEventHookExecutionId="hook-1")
DIGEST = "sha256:" + "a" * 64


class Probe:
    def __init__(self, answer: ProbeResult | Exception) -> None:
        self.answer = answer
        self.asked: list[tuple[str, float]] = []

    def __call__(self, url: str, timeout_seconds: float) -> ProbeResult:
        self.asked.append((url, timeout_seconds))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def service(probe: Probe, checks: dict[str, Any] | None) -> tuple[LifecycleHookService, FakeCodeDeploy]:
    store, codedeploy = FakeDeploymentStore(), FakeCodeDeploy()
    store.put_target(TargetSpec.model_validate(spec(target="web-ecs", codedeploy={
        "application": "web-ecs", "deployment_group": "web-ecs-prod",
        **({"hook_checks": checks} if checks is not None else {})})), "alice")
    store.settle_target("web-ecs", "d-0", Revision(image="web:1", digest=DIGEST), datetime(2026, 3, 1, tzinfo=UTC))
    codedeploy.add(HOOK.deployment_id, "web-ecs", "web-ecs-prod")
    return LifecycleHookService(store, codedeploy, probe), codedeploy


def reported(codedeploy: FakeCodeDeploy) -> str:
    return codedeploy.hook_statuses[(HOOK.deployment_id, HOOK.hook_execution_id)]


def test_a_healthy_url_reports_succeeded() -> None:
    probe = Probe(ProbeResult(200, "ok"))
    hook, codedeploy = service(probe, {"url": URL, "timeout_seconds": 5})
    assert hook.handle(HOOK) == (True, "all checks passed")
    assert reported(codedeploy) == "Succeeded" and probe.asked == [(URL, 5.0)]


@pytest.mark.parametrize("answer, checks, why", [
    (ProbeResult(503, "down"), {}, f"GET {URL} answered 503, expected 200"),
    (ProbeResult(None, "", "TimeoutError: no answer"), {}, f"GET {URL} answered TimeoutError: no answer, expected 200"),
    (ProbeResult(200, "version 1.2"), {"expect_digest": True}, f"GET {URL} does not name the expected image digest"),
])
def test_failing_checks_report_failed(answer: ProbeResult, checks: dict[str, Any], why: str) -> None:
    hook, codedeploy = service(Probe(answer), {"url": URL, **checks})
    succeeded, reason = hook.handle(HOOK)
    assert (succeeded, reason.startswith(why)) == (False, True)
    assert reported(codedeploy) == "Failed"


def test_the_expected_digest_in_the_answer_passes() -> None:
    hook, codedeploy = service(Probe(ProbeResult(200, f"running {DIGEST}")), {"url": URL, "expect_digest": True})
    assert hook.handle(HOOK) == (True, "all checks passed") and reported(codedeploy) == "Succeeded"


def test_no_checks_configured_succeeds_without_a_probe() -> None:
    probe = Probe(ProbeResult(500, ""))
    hook, codedeploy = service(probe, None)
    assert hook.handle(HOOK) == (True, "no checks configured for web-ecs/web-ecs-prod")
    assert reported(codedeploy) == "Succeeded" and probe.asked == []


def test_a_crashing_check_still_reports_failed() -> None:
    hook, codedeploy = service(Probe(RuntimeError("boom")), {"url": URL})
    assert hook.handle(HOOK) == (False, "berth's check crashed; see its logs")
    assert reported(codedeploy) == "Failed"


def test_an_unknown_deployment_fails_the_check_and_the_report_says_why() -> None:
    hook, codedeploy = service(Probe(ProbeResult(200, "ok")), {"url": URL})
    unknown = LifecycleHookEvent(DeploymentId="d-NOSUCH123", LifecycleEventHookExecutionId="hook-1")
    with pytest.raises(Exception, match="PutLifecycleEventHookExecutionStatus failed with DeploymentDoesNotExist"):
        hook.handle(unknown)
    assert codedeploy.hook_statuses == {}
