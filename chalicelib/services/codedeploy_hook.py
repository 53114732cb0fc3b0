"""CodeDeploy's Lambda lifecycle hook (ECS and Lambda compute platforms): run the target's checks and always report.

The handler parses the event (a malformed one names no hook to report to: InvalidEvent, and nothing is reported).
Whatever happens inside, the hook execution gets exactly one PutLifecycleEventHookExecutionStatus: Succeeded only
when every configured check passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chalicelib.adapters.codedeploy import CodeDeployGateway
from chalicelib.adapters.http_probe import ProbeResult
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.errors import BerthError
from chalicelib.domain.events import LifecycleHookEvent
from chalicelib.domain.spec import HookChecks

logger = logging.getLogger(__name__)
# Time the function needs besides the probe (reading the deployment and the target, reporting the status): each
# stage's `lambda_timeout` for codedeploy_hook in .chalice/config.json is at least the longest probe a spec allows
# (hook_checks.timeout_seconds, 60) plus this, or CodeDeploy could get no status at all.
REPORT_MARGIN_SECONDS = 60


class LifecycleHookService:
    def __init__(self, store: DeploymentStore, codedeploy: CodeDeployGateway,
                 probe: Callable[[str, float], ProbeResult]) -> None:
        self._store = store
        self._codedeploy = codedeploy
        self._probe = probe

    def handle(self, hook: LifecycleHookEvent) -> tuple[bool, str]:
        try:
            succeeded, why = self._check(hook.deployment_id)
        except BerthError as exc:
            succeeded, why = False, exc.message
        except Exception:
            logger.exception("lifecycle hook check crashed", extra={"deployment_id": hook.deployment_id})
            succeeded, why = False, "berth's check crashed; see its logs"
        self._codedeploy.put_hook_status(hook.deployment_id, hook.hook_execution_id, succeeded)
        logger.info("hook reported", extra={"deployment_id": hook.deployment_id, "succeeded": succeeded, "why": why})
        return succeeded, why

    def _check(self, deployment_id: str) -> tuple[bool, str]:
        info = self._codedeploy.deployment(deployment_id)
        target = self._store.find_codedeploy_target(info.application, info.group)
        if target is None or target.spec.codedeploy is None or target.spec.codedeploy.hook_checks is None:
            return True, f"no checks configured for {info.application}/{info.group}"
        checks: HookChecks = target.spec.codedeploy.hook_checks
        result = self._probe(checks.url, float(checks.timeout_seconds))
        if result.status != checks.expected_status:
            answer = result.status or result.error
            return False, f"GET {checks.url} answered {answer}, expected {checks.expected_status}"
        if checks.expect_digest:
            digest = target.current_revision.digest if target.current_revision else None
            if not digest or digest not in result.body:
                return False, f"GET {checks.url} does not name the expected image digest {digest}"
        return True, "all checks passed"
