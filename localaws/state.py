"""Process-wide state of the extensions that is not tied to one moto backend.

Job results, instance outcomes and lifecycle hook statuses are addressed by ids that are unique on
their own (job id, instance id, deployment id), and the public functions take no account or region, so
they live here rather than in a backend. State that belongs to one moto object lives with it instead:
Run Command invocations in moto's SSM backend (``ssm_runs``), deployment targets and outcomes on moto's
CodeDeploy deployment (``codedeploy_deployments``). ``install`` chains :func:`reset` onto moto's ``BackendDict.reset``,
so a new ``mock_aws`` context, a ``/moto-api/reset`` call and :func:`localaws.reset` all clear it.

The server handles requests on threads; every access goes through ``LOCK``.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from .outcomes import InstanceOutcome, OutcomeHook

LOCK = threading.RLock()


@dataclass
class State:
    job_results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    strict_jobs: bool = False
    known_jobs: set[str] = field(default_factory=set)
    outcomes: dict[str, InstanceOutcome] = field(default_factory=dict)
    default_outcome: InstanceOutcome = field(default_factory=InstanceOutcome)
    outcome_hook: OutcomeHook | None = None
    hook_statuses: dict[tuple[str, str], str] = field(default_factory=dict)
    stage_retries: list[dict[str, Any]] = field(default_factory=list)
    # ELBv2 target health (localaws/elbv2.py): states set by a test, keyed by (target group ARN, target id), each
    # with the reads it lasts (None: until cleared); and how many reads a (de)registered target stays in transition.
    target_health: dict[tuple[str, str], tuple[str, str, int | None]] = field(default_factory=dict)
    draining_reads: int = 0
    initial_reads: int = 0
    in_transition: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    container_logs: dict[str, str] = field(default_factory=dict)          # docker_answers
    one_off_runs: dict[str, Any] = field(default_factory=dict)            # docker_answers
    docker_calls: list[tuple[str, list[str]]] = field(default_factory=list)
    lifecycle_actions: dict[str, dict[str, str]] = field(default_factory=dict)    # waiting, by token
    lifecycle_results: list[dict[str, str]] = field(default_factory=list)         # accepted completions
    scans: dict[tuple[str, str], tuple[str, dict[str, int]]] = field(default_factory=dict)  # (repo, digest)


STATE = State()
_process_hook: OutcomeHook | None = None


def set_process_hook(hook: OutcomeHook | None) -> None:
    """A hook that survives resets (a server started with ``--run-commands`` keeps running commands)."""
    global _process_hook
    with LOCK:
        _process_hook = hook
        STATE.outcome_hook = hook


def reset() -> None:
    """Forget every job result, instance outcome and lifecycle hook status; restore the process hook."""
    global STATE
    with LOCK:
        STATE = State(outcome_hook=_process_hook)


def current() -> State:
    """The live state; callers hold ``LOCK`` while they use it."""
    return STATE


def snapshot_job_results(job_id: str) -> list[dict[str, Any]]:
    with LOCK:
        return copy.deepcopy(STATE.job_results.get(job_id, []))


def outcome_for(instance_id: str, command: dict[str, Any] | None) -> InstanceOutcome:
    """The hook's answer if it gives one (only when a command is being sent), else the configured outcome."""
    with LOCK:
        hook = STATE.outcome_hook
        configured = STATE.outcomes.get(instance_id, STATE.default_outcome)
    if hook is not None and command is not None:
        answer = hook(instance_id, command)
        if answer is not None:
            return answer
    return configured
