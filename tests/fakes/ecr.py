"""ECR in memory, behind ImageRegistry: pushed tags resolve to their digests; images outside ECR come back as given."""

from __future__ import annotations

import hashlib

from chalicelib.adapters.ecr import ImageRegistry
from chalicelib.domain.errors import ImageNotFound
from chalicelib.domain.image_ref import ImageRef


class FakeImageRegistry(ImageRegistry):
    def __init__(self) -> None:
        super().__init__(ecr_client_for_region=lambda region: None)
        self.digests: dict[tuple[str, str], str] = {}       # (repository, tag) -> digest

    def push(self, repository: str, tag: str, content: str = "v1") -> str:
        digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}:{content}".encode()).hexdigest()
        self.digests[(repository, tag)] = digest
        return digest

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
