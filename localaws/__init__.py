"""localaws: moto 5.2.5 plus the operations berth needs that moto lacks, with controllable outcomes.

Use under ``moto.mock_aws`` (call :func:`install` first) or as a server (``python -m localaws serve``).
State set here is cleared by every moto reset, including the one at the start of each ``mock_aws``
context: set outcomes inside the context.
"""

from __future__ import annotations

import copy
from typing import Any

from . import state as _state
from .docker_answers import docker_calls, set_container_logs, set_one_off_run
from .elbv2 import clear_target_health, set_target_health, set_transition_reads
from .outcomes import InstanceOutcome, OutcomeHook
from .patching import PINNED_MOTO, install

__all__ = [
    "PINNED_MOTO",
    "InstanceOutcome",
    "OutcomeHook",
    "clear_target_health",
    "deployment_targets",
    "docker_calls",
    "hook_statuses",
    "install",
    "job_results",
    "lifecycle_results",
    "reset",
    "set_container_logs",
    "set_default_outcome",
    "set_deployment_outcome",
    "set_one_off_run",
    "set_outcome",
    "set_outcome_hook",
    "set_scan_findings",
    "set_target_health",
    "set_transition_reads",
    "stage_retries",
    "start_lifecycle_action",
    "strict_jobs",
]


def reset() -> None:
    """Clear localaws state: job results, strict jobs, instance outcomes, the outcome hook, hook statuses.

    Deployments and commands are moto's and go with moto's reset (which also calls this).
    """
    _state.reset()


def job_results(job_id: str) -> list[dict[str, Any]]:
    """Accepted PutJobSuccessResult / PutJobFailureResult calls for ``job_id``, oldest first.

    Entries are ``{"type": "success", ...}`` with whichever of ``continuationToken``, ``executionDetails``,
    ``outputVariables`` and ``currentRevision`` the call sent, or ``{"type": "failure", "failureDetails": ...}``.
    """
    return _state.snapshot_job_results(job_id)


def strict_jobs(*known_job_ids: str) -> None:
    """From now on, results for job ids not named here (or in a later call) raise JobNotFoundException."""
    with _state.LOCK:
        live = _state.current()
        live.strict_jobs = True
        live.known_jobs.update(known_job_ids)


def set_outcome(instance_id: str, outcome: InstanceOutcome) -> None:
    """What ``instance_id`` does with commands sent from now on."""
    with _state.LOCK:
        _state.current().outcomes[instance_id] = outcome


def set_default_outcome(outcome: InstanceOutcome) -> None:
    """What instances without their own outcome do with commands sent from now on."""
    with _state.LOCK:
        _state.current().default_outcome = outcome


def set_outcome_hook(hook: OutcomeHook | None) -> None:
    """``hook(instance_id, command) -> InstanceOutcome | None``, asked first at send time; None removes it."""
    with _state.LOCK:
        _state.current().outcome_hook = hook


def set_scan_findings(repository: str, digest: str, status: str = "COMPLETE",
                      counts: dict[str, int] | None = None) -> None:
    """Make DescribeImageScanFindings of one image report ``status`` and, when COMPLETE, ``counts`` per severity
    (``{"CRITICAL": 1, "HIGH": 2}``); other images keep moto's answer (see ``localaws/ecr.py``)."""
    from . import ecr

    ecr.set_scan(repository, digest, status, counts or {})


def set_deployment_outcome(
    deployment_id: str,
    status: str = "Succeeded",
    instances: dict[str, dict[str, Any]] | None = None,
    creator: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    """Make GetDeployment / BatchGetDeployments / the target calls report ``status`` for a moto deployment.

    ``instances`` maps instance ids to ``{"status", "lifecycle_event", "script_name", "error_code",
    "message", "log_tail"}`` (all optional; status defaults to Succeeded); other targets report what the
    deployment status implies. Failed deployments get errorInformation ``HEALTH_CONSTRAINTS`` unless
    ``error_code`` says otherwise. ``creator`` must be a CodeDeploy value (a rollback is ``codeDeployRollback``).
    """
    from . import codedeploy_deployments

    codedeploy_deployments.set_outcome(deployment_id, status, instances, creator, error_code, error_message)


def deployment_targets(deployment_id: str) -> list[str]:
    """Instance ids in the deployment (group tag matches at creation, then instances an outcome named)."""
    from . import codedeploy_deployments

    with _state.LOCK:
        return codedeploy_deployments.targets(codedeploy_deployments.find(deployment_id)[1])


def stage_retries() -> list[dict[str, Any]]:
    """Accepted RetryStageExecution calls, oldest first, as their parameters."""
    with _state.LOCK:
        return copy.deepcopy(_state.current().stage_retries)


def hook_statuses() -> dict[tuple[str, str], str]:
    """Accepted PutLifecycleEventHookExecutionStatus calls: ``{(deployment_id, hook_execution_id): status}``."""
    with _state.LOCK:
        return dict(_state.current().hook_statuses)


def start_lifecycle_action(group: str, hook: str, instance_id: str, account_id: str = "123456789012",
                           region: str = "us-east-1") -> str:
    """Hold `instance_id` on the launch hook `hook` of moto's Auto Scaling group `group`, as Auto Scaling does when it
    launches an instance; returns the action's token (LifecycleActionToken) for the event that announces it."""
    from . import autoscaling

    return autoscaling.start_action(account_id, region, group, hook, instance_id)


def lifecycle_results() -> list[dict[str, str]]:
    """Accepted CompleteLifecycleAction calls, oldest first: the group, hook, instance, token and result."""
    with _state.LOCK:
        return copy.deepcopy(_state.current().lifecycle_results)
