"""ECR: an image named by tag is resolved to its digest, so every attempt and rollback runs the same bits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters.errors import aws_call, error_code, raising
from chalicelib.domain.errors import ImageNotFound
from chalicelib.domain.image_ref import ImageRef


class ImageRegistry:
    def __init__(self, ecr_client_for_region: Callable[[str], Any]) -> None:
        self._client_for = ecr_client_for_region

    def resolve(self, image: ImageRef) -> ImageRef:
        """The same reference with its digest; images outside ECR come back unchanged (instances report theirs)."""
        region = image.ecr_region
        if region is None:
            return image
        image_id = {"imageDigest": image.digest} if image.digest else {"imageTag": image.tag or "latest"}
        not_found = raising(lambda exc: ImageNotFound(
            f"image {image} is not in ECR ({error_code(exc)}): push it first, or check the tag and region"))
        # The client is made inside the call: a region botocore refuses is this call's failure, like any other.
        found = aws_call("ECR DescribeImages", lambda **params: self._client_for(region).describe_images(**params),
                         expected={"ImageNotFoundException": not_found, "RepositoryNotFoundException": not_found},
                         registryId=image.ecr_account, repositoryName=image.repository, imageIds=[image_id])
        details = found.get("imageDetails") or []
        if not details:
            raise ImageNotFound(f"image {image} is not in ECR")
        return image.with_digest(details[0]["imageDigest"])
