"""Which instances a target is: an EC2 tag filter or a list of instance ids, as SSM Run Command targets them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from .fields import StrictModel, admitting, anchored

INSTANCE_ID = r"^(i|mi)-[0-9a-f]{8,17}$"
# SSM tag targets: letters, digits, spaces and + - = . _ : / @ (the EC2 tag alphabet), no leading "aws:".
TAG_TEXT = r"^[\w +\-=.:/@]{1,128}$"

TagText = Annotated[str, Field(pattern=anchored(TAG_TEXT))]


def _not_hybrid(instance_id: Any, info: ValidationInfo) -> Any:
    # Hybrid managed nodes (mi-) are not EC2 instances: berth resolves and checks what it deploys to through EC2.
    if isinstance(instance_id, str) and instance_id.startswith("mi-") and admitting(info):
        raise ValueError(f"{instance_id!r} is a hybrid managed node: berth deploys to EC2 instance ids (i-...) only, "
                         "because it resolves and checks its targets through EC2")
    return instance_id


class InstancesSpec(StrictModel):
    tags: dict[TagText, TagText] | None = None
    ids: list[Annotated[str, BeforeValidator(_not_hybrid), Field(pattern=anchored(INSTANCE_ID))]] | None = Field(
        default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _exactly_one(self) -> InstancesSpec:
        if (self.tags is None) == (self.ids is None):
            raise ValueError("give exactly one of 'tags' (a tag filter) or 'ids' (at most 50 instance ids)")
        if self.tags is not None and not 1 <= len(self.tags) <= 5:
            raise ValueError("'tags' needs 1 to 5 tag keys (SSM targets take at most 5)")
        if self.tags is not None and any(key.lower().startswith("aws:") for key in self.tags):
            raise ValueError("tag keys starting with 'aws:' are reserved")
        if self.ids is not None and len(set(self.ids)) != len(self.ids):
            raise ValueError("'ids' lists an instance twice")
        return self
