"""ECR: an image named by tag is resolved to its digest, so every attempt and rollback runs the same bits; and what
the checks before a deployment need of it (domain/image_checks.py): its platforms and its scan findings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters.errors import aws_call, error_code, error_message, raising, returning
from chalicelib.domain.errors import ImageNotFound
from chalicelib.domain.image_checks import ACCEPTED_MEDIA_TYPES, ScanResult, platforms_of, scan_counts
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

    def platforms(self, image: ImageRef) -> frozenset[str] | None:
        """The architectures of a pinned ECR image's index or manifest list (BatchGetImage, asking for those media
        types as they are); None for a single-platform manifest or an image outside ECR (see domain/image_checks)."""
        region = image.ecr_region
        if region is None or image.digest is None:
            return None
        found = aws_call("ECR BatchGetImage", lambda **params: self._client_for(region).batch_get_image(**params),
                         registryId=image.ecr_account, repositoryName=image.repository,
                         imageIds=[{"imageDigest": image.digest}], acceptedMediaTypes=list(ACCEPTED_MEDIA_TYPES))
        images = found.get("images") or []
        if not images:
            raise ImageNotFound(f"image {image} is not in ECR")
        manifest = images[0]
        return platforms_of(str(manifest.get("imageManifestMediaType", "")), str(manifest.get("imageManifest", "")))

    def scan(self, image: ImageRef) -> ScanResult:
        """The scan status and findings' counts per severity of a pinned ECR image (DescribeImageScanFindings; the
        counts come on every page, so one page is enough). Status NONE: no scan of it exists."""
        region = image.ecr_region
        if region is None or image.digest is None:
            return ScanResult("NONE", {}, "not an ECR image")
        found = aws_call("ECR DescribeImageScanFindings",
                         lambda **params: self._client_for(region).describe_image_scan_findings(**params),
                         expected={"ScanNotFoundException": returning(None),
                                   "ImageNotFoundException": raising(lambda exc: ImageNotFound(
                                       f"image {image} is not in ECR ({error_message(exc) or error_code(exc)})"))},
                         registryId=image.ecr_account, repositoryName=image.repository,
                         imageId={"imageDigest": image.digest}, maxResults=1)
        if found is None:
            return ScanResult("NONE", {})
        status = found.get("imageScanStatus") or {}
        return ScanResult(str(status.get("status", "NONE")), scan_counts(found), str(status.get("description", "")))
