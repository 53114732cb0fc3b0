"""berth: Chalice entry points. Each handler hands its event to one service; wiring builds the services lazily."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice

from chalicelib.api.routing import ApiRequest, ApiRoutes

app = Chalice(app_name="berth")
api = ApiRoutes(app)  # every route: AWS_IAM authorization, JSON errors, listed in /openapi.json


@app.lambda_function(name="pipeline_job")
def pipeline_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The CodePipeline Invoke action. The event carries artifact credentials: it is never logged."""
    from chalicelib import wiring

    result = wiring.pipeline_job_service().handle(event)
    return {"result": type(result).__name__ if result else "ignored"}


# REST API for engineers (chalicelib/services/operations.py). Models are named in chalicelib/api/models.py.
def _operations() -> Any:
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
    return _operations().redeploy(name, body.image, body.reason, body.reset_breaker, request.caller)


@api.route("POST", "/targets/{name}/rollback", summary="Deploy the previous successful revision again, by digest",
           response="DeploymentView", status=202, body="RollbackRequest", location="/deployments/{deployment_id}",
           errors=(404, 409, 502))
def rollback(name: str, request: ApiRequest) -> Any:
    body = request.body
    return _operations().rollback(name, body.to, body.reason, body.reset_breaker, request.caller)


@api.route("GET", "/targets/{name}/deployments", summary="A target's deployments, newest first, a page at a time",
           response="HistoryView", query="HistoryQuery", errors=(404,))
def list_deployments(name: str, request: ApiRequest) -> Any:
    return _operations().history(name, request.query.limit, request.query.next)


@api.route("GET", "/deployments/{deployment_id}", summary="One deployment, refreshed from SSM while it runs",
           response="DeploymentView", errors=(404,))
def get_deployment(deployment_id: str, request: ApiRequest) -> Any:
    return _operations().deployment(deployment_id)


@api.route("POST", "/deployments/{deployment_id}/cancel", summary="Cancel a running deployment and free its target",
           response="DeploymentView", body="CancelRequest", errors=(404, 409, 502))
def cancel_deployment(deployment_id: str, request: ApiRequest) -> Any:
    return _operations().cancel(deployment_id, request.caller, request.body.reason)


@api.route("GET", "/openapi.json", summary="This API's OpenAPI document", response="OpenApiDocument")
def openapi_document(request: ApiRequest) -> Any:
    from chalicelib.api.openapi import document

    return document(api.table)
