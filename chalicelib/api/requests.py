"""The REST API's request bodies and query strings. They forbid unknown keys, like the target spec; a body the
model refuses is a 400 naming the field (api/handling.py). `chalicelib.api.models` names them for the routes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, field_validator

from chalicelib.domain.errors import InvalidRequest, InvalidRevision
from chalicelib.domain.spec import TARGET_NAME, TargetSpec

DEPLOYMENT_ID = r"^d-[0-9A-Za-z][0-9A-Za-z-]{0,62}$"
MAX_REASON = 500


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpecBody(TargetSpec):
    """A target spec whose `target` may be left out: the path names it."""

    target: Annotated[str, Field(pattern=TARGET_NAME)] | None = None  # type: ignore[assignment]

    @field_validator("image", mode="wrap")
    @classmethod
    def _image_error_names_the_field(cls, image: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(image)
        except InvalidRevision as exc:  # the spec's image check raises berth's error; pydantic then knows no field
            raise ValueError(exc.message) from None

    def spec_for(self, name: str) -> TargetSpec:
        if self.target is not None and self.target != name:
            raise InvalidRequest(f"target: the body names {self.target!r} but the path names {name!r}; they must "
                                 "be the same (or leave 'target' out)", field="target")
        return TargetSpec.model_validate({**self.model_dump(exclude_unset=True), "target": name})


class RedeployRequest(_Request):
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="image to deploy; the target's current revision (by digest) when left out")
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    reset_breaker: bool = Field(default=False, description="close an open circuit breaker, then deploy")


class PlanRequest(_Request):
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="image to plan for; the target's current revision (by digest) when left out")


class RollbackRequest(_Request):
    to: Annotated[str, Field(pattern=DEPLOYMENT_ID)] | None = Field(
        default=None, description="a succeeded deployment of this target whose revision to deploy again")
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None
    reset_breaker: bool = False


class SyncRequest(_Request):
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None


class CancelRequest(_Request):
    reason: Annotated[str, Field(max_length=MAX_REASON)] | None = None


class HistoryQuery(_Request):
    limit: int = Field(default=20, ge=1, le=100)
    next: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, description="the `next` token of the previous page")
