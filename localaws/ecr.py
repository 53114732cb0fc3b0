"""ECR image scans a test can set, which moto cannot give.

moto answers DescribeImageScanFindings with ScanNotFoundException until StartImageScan, then always with one HIGH
finding and status COMPLETE. :func:`localaws.set_scan_findings` makes one image (repository and digest) report a
status (COMPLETE, IN_PROGRESS, FAILED, ...) and counts per severity; every other image keeps moto's answer.

BatchGetImage needs nothing here: moto keeps a pushed manifest as it was put, so an image index or a manifest list
comes back with its media type and its platforms (tests/localaws/test_localaws_ecr.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult

from . import state
from .shapes import shaped

SERVICE = "ecr"


def set_scan(repository: str, digest: str, status: str, counts: dict[str, int]) -> None:
    with state.LOCK:
        state.current().scans[(repository, digest)] = (status, dict(counts))


def describe_image_scan_findings_with(moto_method: Callable[[Any], ActionResult]) -> Callable[[Any], ActionResult]:
    def describe_image_scan_findings(self: Any) -> ActionResult:
        repository = self._get_param("repositoryName")
        image_id = self._get_param("imageId") or {}
        # moto finds the image (or raises its own RepositoryNotFound / ImageNotFound), so a tag works as in ECR.
        image = self.ecr_backend._get_repository(repository, self._get_param("registryId"))._get_image(
            image_id.get("imageTag"), image_id.get("imageDigest"))
        with state.LOCK:
            set_for = state.current().scans.get((repository, image.get_image_digest()))
        if set_for is None:
            return moto_method(self)
        status, counts = set_for
        body: dict[str, Any] = {
            "registryId": self.ecr_backend.account_id, "repositoryName": repository,
            "imageId": {"imageDigest": image.get_image_digest()},
            "imageScanStatus": {"status": status, "description": f"set by localaws: {status}"},
        }
        if status == "COMPLETE":
            body["imageScanFindings"] = {"findings": [], "findingSeverityCounts": counts}
        return shaped(SERVICE, "DescribeImageScanFindings", body)

    return describe_image_scan_findings


def patch() -> None:
    from moto.ecr.responses import ECRResponse

    moto_method = ECRResponse.describe_image_scan_findings
    ECRResponse.describe_image_scan_findings = describe_image_scan_findings_with(moto_method)  # type: ignore[method-assign,assignment]
