"""berth: Chalice entry points. Each handler hands its event to one service; wiring builds the services lazily."""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice

from chalicelib.api.route import ApiRequest
from chalicelib.api.routing import ApiRoutes

if TYPE_CHECKING:   # each handler imports what its path needs when it is first called
    from chalicelib.services.operations import Operations
    from chalicelib.services.outcome import Outcome

# A cold invocation builds tens of thousands of long-lived objects (botocore's service models, pydantic's validators)
# and few cycles: at the default threshold (700) the collector rescans them hundreds of times before the first answer; a
# Lambda process is short-lived and bounded by its memory size, so collecting every 200,000 allocations costs little.
gc.set_threshold(200_000, 50, 50)

app = Chalice(app_name="berth")
api = ApiRoutes(app)  # every route: AWS_IAM authorization, JSON errors, listed in /openapi.json


@app.lambda_function(name="pipeline_job")
def pipeline_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The CodePipeline Invoke action. The event carries artifact credentials: it is never logged."""
    from chalicelib import wiring
    from chalicelib.domain.job import read_job_event
    from chalicelib.observability import observed

    with observed("pipeline_job", context):
        result = wiring.pipeline_job_service().handle(read_job_event(event))
    return {"result": type(result).__name__ if result else "ignored"}


# EventBridge rules and the retry Lambda: each served by the chalicelib/services module of its name.
@app.on_cw_event({"source": ["aws.codedeploy"], "detail-type": [
    "CodeDeploy Deployment State-change Notification", "CodeDeploy Instance State-change Notification"]},
    name="codedeploy_events")
def codedeploy_events(event: Any) -> dict[str, str]:
    from chalicelib import wiring
    from chalicelib.domain.events import CodeDeployEvent, parse_event
    from chalicelib.observability import observed

    with observed("codedeploy_events", event.context):
        return _outcome(wiring.codedeploy_recorder().on_event(parse_event(CodeDeployEvent, event.to_dict())))


@app.on_cw_event({"source": ["aws.ssm"], "detail-type": ["EC2 Command Status-change Notification"],
                  "detail": {"document-name": ["AWS-RunShellScript"]}}, name="ssm_command_events")
def ssm_command_events(event: Any) -> dict[str, str]:
    from chalicelib import wiring
    from chalicelib.domain.events import SsmCommandEvent, parse_event
    from chalicelib.observability import observed

    with observed("ssm_command_events", event.context):
        return _outcome(wiring.ssm_command_follower().on_event(parse_event(SsmCommandEvent, event.to_dict())))


@app.on_cw_event({"source": ["aws.codepipeline"], "detail-type": ["CodePipeline Action Execution State Change"],
                  "detail": {"state": ["FAILED"]}}, name="pipeline_action_failed")
def pipeline_action_failed(event: Any) -> dict[str, str]:
    from chalicelib import wiring
    from chalicelib.domain.events import PipelineActionEvent, parse_event
    from chalicelib.observability import observed

    with observed("pipeline_action_failed", event.context):
        return _outcome(wiring.pipeline_retrier().on_action_failed(parse_event(PipelineActionEvent,
                                                                               event.to_dict())))


@app.on_cw_event({"source": ["aws.ec2", "aws.autoscaling"],
                  "detail-type": ["EC2 Instance State-change Notification", "EC2 Instance-launch Lifecycle Action"],
                  "detail": {"$or": [{"state": ["running"]},
                                     {"LifecycleTransition": ["autoscaling:EC2_INSTANCE_LAUNCHING"]}]}},
                 name="instance_launches")
def instance_launches(event: Any) -> dict[str, str]:
    """A new instance joins its target at the target's current revision (chalicelib/services/instance_joins.py)."""
    from chalicelib import wiring
    from chalicelib.domain.errors import InvalidEvent
    from chalicelib.domain.instance_launch import parse_instance_launch
    from chalicelib.observability import observed

    with observed("instance_launches", event.context):
        try:
            launch = parse_instance_launch(event.to_dict())
        except InvalidEvent as exc:     # delivering it again would not mend it: logged, nothing done
            logging.getLogger("chalicelib.instance_launches").warning(
                "not an instance launch berth can act on", extra={"error": exc.message})
            return {"action": "refused", "detail": exc.message}
        return _outcome(wiring.instance_joins().on_launch(launch))


@app.lambda_function(name="retry_deployment")
def retry_deployment(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Invoked by an EventBridge Scheduler one-time schedule with the retry's payload."""
    from chalicelib import wiring
    from chalicelib.domain.retry_payload import parse_retry_payload
    from chalicelib.observability import observed

    with observed("retry_deployment", context):
        return _outcome(wiring.retry_runner().run(parse_retry_payload(event)))


@app.lambda_function(name="codedeploy_hook")
def codedeploy_hook(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """CodeDeploy's Lambda lifecycle hook: always reports Succeeded or Failed for the hook execution."""
    from chalicelib import wiring
    from chalicelib.domain.events import LifecycleHookEvent, parse_event
    from chalicelib.observability import observed

    with observed("codedeploy_hook", context):
        hook = parse_event(LifecycleHookEvent, event)       # InvalidEvent: it names no hook execution to report to
        succeeded, why = wiring.lifecycle_hook_service().handle(hook)
    return {"status": "Succeeded" if succeeded else "Failed", "why": why}


def _outcome(outcome: Outcome) -> dict[str, str]:
    return {"action": outcome.action, "detail": outcome.detail}


# REST API for engineers (chalicelib/services/operations.py). Models are named in chalicelib/api/models.py.
def _operations() -> Operations:
    from chalicelib import wiring

    return wiring.operations()


@api.route("GET", "/targets", summary="List the registered targets", response="TargetList")
def list_targets(request: ApiRequest) -> Any:
    return _operations().targets()


@api.route("PUT", "/targets/{name}", summary="Register or update a target's spec", response="TargetView",
           body="TargetSpecBody", body_required=True)
def put_target(name: str, request: ApiRequest) -> Any:
    return _operations().register_target(request.body.spec_for(name), request.caller)


@api.route("GET", "/targets/{name}", summary="A target: spec, current revision, last deployment, lock, breaker",
           response="TargetView", errors=(404,))
def get_target(name: str, request: ApiRequest) -> Any:
    return _operations().target(name)


@api.route("POST", "/targets/{name}/deployments", summary="Redeploy: an image, or the current revision again",
           response="DeploymentView", status=202, body="RedeployRequest", location="/deployments/{deployment_id}",
           errors=(404, 409, 502))
def redeploy(name: str, request: ApiRequest) -> Any:
    body = request.body
    return _operations().redeploy(name, body.image, body.reason, body.reset_breaker, request.caller,
                                  body.override_freeze)


@api.route("POST", "/targets/{name}/rollback", summary="Deploy the previous successful revision again, by digest",
           response="DeploymentView", status=202, body="RollbackRequest", location="/deployments/{deployment_id}",
           errors=(404, 409, 502))
def rollback(name: str, request: ApiRequest) -> Any:
    body = request.body
    return _operations().rollback(name, body.to, body.reason, body.reset_breaker, request.caller,
                                  body.override_freeze)


@api.route("POST", "/targets/{name}/sync", summary="Bring the instances left behind (and only those) to the current "
           "revision", response="SyncView", status=202, body="SyncRequest", location="/deployments/{deployment_id}",
           errors=(404, 409, 502))
def sync_target(name: str, request: ApiRequest) -> Any:
    return _operations().sync(name, request.body.reason, request.caller, request.body.override_freeze)


@api.route("POST", "/targets/{name}/plan", summary="What a deployment would do now and what would refuse it; sends "
           "nothing, takes no lock", response="PlanView", body="PlanRequest", errors=(404, 502))
def plan_deployment(name: str, request: ApiRequest) -> Any:
    from chalicelib import wiring

    return wiring.planner().plan(name, request.body.image)


@api.route("GET", "/targets/{name}/deployments", summary="A target's deployments, newest first, a page at a time",
           response="HistoryView", query="HistoryQuery", errors=(404,))
def list_deployments(name: str, request: ApiRequest) -> Any:
    return _operations().history(name, request.query.limit, request.query.next)


@api.route("GET", "/deployments", summary="Deployments across targets, newest first, by caller, digest, time, target "
           "and status (DynamoDB indexes, never a scan)", response="HistoryView", query="AuditQuery")
def search_deployments(request: ApiRequest) -> Any:
    query = request.query
    return _operations().search_history(query.audit_filter(), query.limit, query.next)


@api.route("GET", "/deployments/{deployment_id}", summary="One deployment, refreshed from SSM while it runs",
           response="DeploymentView", errors=(404,))
def get_deployment(deployment_id: str, request: ApiRequest) -> Any:
    return _operations().deployment(deployment_id)


@api.route("POST", "/deployments/{deployment_id}/cancel", summary="Cancel a running deployment and free its target",
           response="DeploymentView", body="CancelRequest", errors=(404, 409, 502))
def cancel_deployment(deployment_id: str, request: ApiRequest) -> Any:
    return _operations().cancel(deployment_id, request.caller, request.body.reason)


# A target's freeze (domain/freeze.py): deployments wait (pipeline) or are refused (REST) while it is in force.
@api.route("POST", "/targets/{name}/freeze", summary="Freeze a target: pipeline jobs wait, REST deployments are "
           "refused unless overridden, retries are held", response="TargetView", body="FreezeRequest",
           body_required=True, errors=(404,))
def freeze_target(name: str, request: ApiRequest) -> Any:
    return _operations().freeze(name, request.body.reason, request.body.until, request.caller)


@api.route("POST", "/targets/{name}/unfreeze", summary="Lift a target's freeze", response="TargetView",
           errors=(404,))
def unfreeze_target(name: str, request: ApiRequest) -> Any:
    return _operations().unfreeze(name, request.caller)


# Operators' tools: a target's container logs and one-off runs of its image (services/container_logs.py and
# container_exec.py). Each has its own routes, so an IAM policy can allow logs and deny exec (docs/operations.md).
@api.route("GET", "/targets/{name}/logs", summary="Send `docker logs` to the target's Online instances (or one); "
           "read the answers at the Location", response="CommandStartedView", status=202, query="LogsQuery",
           location="/targets/{target}/logs/{command_id}", errors=(404, 409, 502))
def start_logs(name: str, request: ApiRequest) -> Any:
    from chalicelib import wiring

    query = request.query
    return wiring.container_logs().start(name, query.instance, query.since, query.tail, request.caller)


@api.route("GET", "/targets/{name}/logs/{command_id}", summary="Each instance's logs, prefixed by instance id, "
           "newest last; says when SSM cut them", response="LogsView", errors=(404, 502))
def read_logs(name: str, command_id: str, request: ApiRequest) -> Any:
    from chalicelib import wiring

    return wiring.container_logs().read(name, command_id)


@api.route("POST", "/targets/{name}/exec", summary="Run a command in a one-off container of the target's current "
           "image (--rm) on one instance or all; recorded with the caller", response="ExecStartedView", status=202,
           body="ExecRequest", body_required=True, location="/targets/{target}/exec/{command_id}",
           errors=(404, 409, 502))
def start_exec(name: str, request: ApiRequest) -> Any:
    from chalicelib import wiring

    body = request.body
    return wiring.container_exec().start(name, list(body.command), body.instance, body.all, body.timeout_seconds,
                                         request.caller)


@api.route("GET", "/targets/{name}/exec/{command_id}", summary="A one-off run's output and exit code on each "
           "instance", response="ExecView", errors=(404, 502))
def read_exec(name: str, command_id: str, request: ApiRequest) -> Any:
    from chalicelib import wiring

    return wiring.container_exec().read(name, command_id)


@api.route("GET", "/openapi.json", summary="This API's OpenAPI document", response="OpenApiDocument")
def openapi_document(request: ApiRequest) -> Any:
    from chalicelib.api.openapi import document

    return document(api.table)
