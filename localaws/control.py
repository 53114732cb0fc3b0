"""Client for a localaws server's control endpoint: the module functions, across processes.

    control = Control("http://127.0.0.1:4566")
    control.set_outcome("i-0abc...", InstanceOutcome(status="Failed", stderr="boom"))
    control.job_results(job_id)

(There is no ``set_outcome_hook``: a function cannot cross processes; start the server with
``--run-commands`` to have it run commands on its own machine.)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .outcomes import InstanceOutcome


class ControlError(RuntimeError):
    """The server refused a control request (bad outcome, unknown deployment, ...)."""


class Control:
    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, not {endpoint!r}")
        self._base = endpoint.rstrip("/") + "/_localaws/"
        self._timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise ControlError(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}") from None

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def strict_jobs(self, *known_job_ids: str) -> None:
        self._call("POST", "strict-jobs", {"job_ids": list(known_job_ids)})

    def job_results(self, job_id: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self._call("GET", f"job-results/{job_id}")
        return results

    def set_outcome(self, instance_id: str, outcome: InstanceOutcome) -> None:
        self._call("PUT", f"outcomes/{instance_id}", outcome.to_json())

    def set_default_outcome(self, outcome: InstanceOutcome) -> None:
        self._call("PUT", "default-outcome", outcome.to_json())

    def set_target_health(self, target_group_arn: str, target_id: str, health: str, reason: str | None = None,
                          reads: int | None = None) -> None:
        self._call("PUT", "target-health", {"target_group_arn": target_group_arn, "target_id": target_id,
                                            "health": health, "reason": reason, "reads": reads})

    def set_transition_reads(self, draining: int = 0, initial: int = 0) -> None:
        self._call("PUT", "transition-reads", {"draining": draining, "initial": initial})

    def set_deployment_outcome(
        self,
        deployment_id: str,
        status: str = "Succeeded",
        instances: dict[str, dict[str, Any]] | None = None,
        creator: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        body = {
            "status": status,
            "instances": instances,
            "creator": creator,
            "error_code": error_code,
            "error_message": error_message,
        }
        self._call("PUT", f"deployments/{deployment_id}/outcome", body)

    def deployment_targets(self, deployment_id: str) -> list[str]:
        targets: list[str] = self._call("GET", f"deployments/{deployment_id}/targets")
        return targets

    def hook_statuses(self) -> dict[tuple[str, str], str]:
        rows: list[dict[str, str]] = self._call("GET", "hook-statuses")
        return {(row["deploymentId"], row["lifecycleEventHookExecutionId"]): row["status"] for row in rows}
