"""ECR in memory, behind ImageRegistry: pushed tags resolve to their digests; images outside ECR come back as given."""

from __future__ import annotations

import hashlib

from chalicelib.adapters.ecr import ImageRegistry
from chalicelib.domain.errors import ImageNotFound
from chalicelib.domain.image_checks import ScanResult
from chalicelib.domain.image_ref import ImageRef


class FakeImageRegistry(ImageRegistry):
    def __init__(self) -> None:
        super().__init__(ecr_client_for_region=lambda region: None)
        self.digests: dict[tuple[str, str], str] = {}       # (repository, tag) -> digest
        self.indexes: dict[str, frozenset[str]] = {}         # digest -> the platforms of an image index
        self.scans: dict[str, ScanResult] = {}               # digest -> its scan; none: ECR holds no scan of it

    def push(self, repository: str, tag: str, content: str = "v1", platforms: list[str] | None = None) -> str:
        """Push a single-platform manifest, or an image index of `platforms` (OCI architectures)."""
        digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}:{content}:{platforms}".encode()).hexdigest()
        self.digests[(repository, tag)] = digest
        if platforms is not None:
            self.indexes[digest] = frozenset(platforms) - {"unknown"}    # attestations are no platform
        return digest

    def set_scan(self, digest: str, status: str, counts: dict[str, int] | None = None) -> None:
        self.scans[digest] = ScanResult(status, dict(counts or {}))

    def platforms(self, image: ImageRef) -> frozenset[str] | None:
        if image.ecr_region is None or image.digest is None:
            return None
        self._known(image)
        return self.indexes.get(image.digest)

    def scan(self, image: ImageRef) -> ScanResult:
        if image.ecr_region is None or image.digest is None:
            return ScanResult("NONE", {}, "not an ECR image")
        self._known(image)
        return self.scans.get(image.digest, ScanResult("NONE", {}))

    def _known(self, image: ImageRef) -> None:
        if image.digest not in self.digests.values():
            raise ImageNotFound(f"image {image} is not in ECR")

    def resolve(self, image: ImageRef) -> ImageRef:
        if image.ecr_region is None:
            return image
        if image.digest:
            if image.digest in self.digests.values():
                return image
        elif (image.repository, image.tag or "latest") in self.digests:
            return image.with_digest(self.digests[(image.repository, image.tag or "latest")])
        raise ImageNotFound(f"image {image} is not in ECR (ImageNotFoundException): push it first, or check the tag "
                            "and region")
