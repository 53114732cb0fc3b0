"""localaws: moto 5.2.5 plus the operations berth needs that moto lacks, with controllable outcomes.

Use under ``moto.mock_aws`` (call :func:`install` first) or as a server (``python -m localaws serve``).
State set here is cleared by every moto reset, including the one at the start of each ``mock_aws``
context: set outcomes inside the context.
"""

from __future__ import annotations

from typing import Any

from . import state as _state
from .outcomes import InstanceOutcome, OutcomeHook
from .patching import PINNED_MOTO, install

__all__ = [
    "PINNED_MOTO",
    "InstanceOutcome",
    "OutcomeHook",
    "install",
    "job_results",
    "reset",
    "set_default_outcome",
    "set_outcome",
    "set_outcome_hook",
    "strict_jobs",
]


def reset() -> None:
    """Clear localaws state: job results, outcomes, hook, deployment outcomes, hook statuses."""
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
