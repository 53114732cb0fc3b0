"""What one REST route is (method, path, models) and what its view is given: shared by the routing that registers
routes and the handling that runs them, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    name: str                          # the view's name: the OpenAPI operationId
    summary: str
    response: str                      # a model in chalicelib.api.models
    status: int = 200
    body: str | None = None            # the request body's model; None when the route takes no body
    body_required: bool = False
    query: str | None = None           # the query string's model
    location: str | None = None        # a Location header, formatted from the response's fields
    errors: tuple[int, ...] = ()

    @property
    def path_parameters(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{") and part.endswith("}")]


@dataclass(frozen=True)
class ApiRequest:
    """What a view gets besides its path parameters: the parsed body and query, and who is calling."""

    caller: str
    body: Any = None
    query: Any = None
