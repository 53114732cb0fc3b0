"""The HTTP control endpoint a localaws server adds under ``/_localaws/``.

Outcomes and results live in the server's process, so a test or a local-mode tool in another process
drives them over HTTP (see ``localaws.control.Control``). Routes, all JSON:

    POST /_localaws/reset
    POST /_localaws/strict-jobs                     {"job_ids": [...]}
    GET  /_localaws/job-results/<job_id>
    PUT  /_localaws/outcomes/<instance_id>          InstanceOutcome fields
    PUT  /_localaws/default-outcome                 InstanceOutcome fields
    PUT  /_localaws/deployments/<id>/outcome        {"status", "instances", "creator", "error_code", "error_message"}
    GET  /_localaws/deployments/<id>/targets
    GET  /_localaws/hook-statuses                   [{"deploymentId", "lifecycleEventHookExecutionId", "status"}]
    PUT  /_localaws/target-health                   {"target_group_arn", "target_id", "health", "reason", "reads"}
    PUT  /_localaws/transition-reads                {"draining", "initial"}

Bad input answers 400, an unknown deployment 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import localaws

from .outcomes import InstanceOutcome

PREFIX = "/_localaws/"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _route(method: str, parts: list[str], body: Any) -> Any:
    match (method, parts):
        case ("POST", ["reset"]):
            localaws.reset()
            return {}
        case ("POST", ["strict-jobs"]):
            localaws.strict_jobs(*body.get("job_ids", []))
            return {}
        case ("GET", ["job-results", job_id]):
            return localaws.job_results(job_id)
        case ("PUT", ["outcomes", instance_id]):
            localaws.set_outcome(instance_id, InstanceOutcome.from_json(body))
            return {}
        case ("PUT", ["default-outcome"]):
            localaws.set_default_outcome(InstanceOutcome.from_json(body))
            return {}
        case ("PUT", ["deployments", deployment_id, "outcome"]):
            localaws.set_deployment_outcome(deployment_id, **body)
            return {}
        case ("GET", ["deployments", deployment_id, "targets"]):
            return localaws.deployment_targets(deployment_id)
        case ("PUT", ["target-health"]):
            localaws.set_target_health(body["target_group_arn"], body["target_id"], body["health"],
                                       body.get("reason"), body.get("reads"))
            return {}
        case ("PUT", ["transition-reads"]):
            localaws.set_transition_reads(int(body.get("draining", 0)), int(body.get("initial", 0)))
            return {}
        case ("GET", ["hook-statuses"]):
            return [
                {"deploymentId": d, "lifecycleEventHookExecutionId": h, "status": s}
                for (d, h), s in localaws.hook_statuses().items()
            ]
    raise LookupError(f"no control route {method} {'/'.join(parts)}")


def _answer(start_response: Callable[..., Any], status: str, payload: Any) -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def with_control(moto_app: WsgiApp) -> WsgiApp:
    """Wrap moto's WSGI app: ``/_localaws/`` requests are answered here, all others go to moto."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            parts = [part for part in path[len(PREFIX) :].split("/") if part]
            return _answer(start_response, "200 OK", _route(environ["REQUEST_METHOD"], parts, body))
        except LookupError as error:
            return _answer(start_response, "404 Not Found", {"error": str(error)})
        except (ValueError, TypeError) as error:
            return _answer(start_response, "400 Bad Request", {"error": str(error)})

    return app
