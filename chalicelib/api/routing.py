"""Declaring the REST API's routes: one decorator registers a Chalice route and records it in the route table.

Every route gets `AWS_IAM` authorization; the table (`ApiRoutes.table`) is what the OpenAPI document is generated from
and what the authorization tests walk. Models are named by string and looked up in `chalicelib.api.models` only when a
request arrives, so importing app.py (every Lambda's cold start, the pipeline action's too) does not load pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from chalice.app import Chalice, IAMAuthorizer, Response

from chalicelib.api.route import ApiRoute

View = TypeVar("View", bound=Callable[..., Any])
IAM = IAMAuthorizer()
PATH_PARAMETERS = {"name": "a target name", "deployment_id": "a deployment id", "command_id": "an SSM command id"}


class ApiRoutes:
    def __init__(self, app: Chalice) -> None:
        self._app = app
        self.table: list[ApiRoute] = []

    def route(self, method: str, path: str, *, summary: str, response: str, status: int = 200,
              body: str | None = None, body_required: bool = False, query: str | None = None,
              location: str | None = None, errors: tuple[int, ...] = ()) -> Callable[[View], View]:
        def register(view: View) -> View:
            route = ApiRoute(method, path, view.__name__, summary, response, status, body, body_required, query,
                             location, errors)
            unknown = set(route.path_parameters) - set(PATH_PARAMETERS)
            if unknown:
                raise ValueError(f"{path}: no validation rule for path parameters {sorted(unknown)}")
            self.table.append(route)

            def handler(**path_parameters: str) -> Response:
                from chalicelib.api.handling import handle

                return handle(route, view, self._app.current_request, path_parameters)

            handler.__name__ = handler.__qualname__ = view.__name__
            handler.__doc__ = view.__doc__
            # Every content type reaches the handler, so a wrong one gets berth's JSON error, not Chalice's.
            self._app.route(path, methods=[method], authorizer=IAM, content_types=["*/*"], name=view.__name__)(
                handler)
            return view

        return register
