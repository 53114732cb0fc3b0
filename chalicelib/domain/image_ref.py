"""Docker image references, parsed by the grammar of distribution/reference.

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path-component [ "/" path-component ]*

The first component is a registry host only when it contains "." or ":" or is "localhost", as Docker decides.
berth accepts sha256 digests only: they are what registries return and what `docker pull` pins to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidRevision

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]{{1,5}})?\Z")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_ECR_HOST = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\Z")
_MAX_NAME_LENGTH = 255
MUTABLE_TAGS = frozenset({"latest"})


@dataclass(frozen=True)
class ImageRef:
    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def ecr_region(self) -> str | None:
        match = _ECR_HOST.match(self.registry or "")
        return match.group("region") if match else None

    @property
    def ecr_account(self) -> str | None:
        match = _ECR_HOST.match(self.registry or "")
        return match.group("account") if match else None

    @property
    def is_mutable(self) -> bool:
        """A reference that can point at other bits tomorrow: no digest and no tag, or a tag such as `latest`."""
        return self.digest is None and (self.tag is None or self.tag in MUTABLE_TAGS)

    def with_digest(self, digest: str) -> ImageRef:
        if not _DIGEST.match(digest):
            raise InvalidRevision(f"image digest {digest!r} is not a sha256 digest")
        return ImageRef(self.registry, self.repository, self.tag, digest)

    @property
    def pinned(self) -> str:
        """What the instances pull: by digest when one is known, so every attempt runs the same bits."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return str(self)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_ref(text: object) -> ImageRef:
    """Parse `text` as a Docker image reference, or raise InvalidRevision saying what is wrong with it."""
    if not isinstance(text, str) or not text:
        raise InvalidRevision("image must be a non-empty string such as registry/repo:tag")
    if len(text) > 512 or not text.isascii() or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise InvalidRevision("image reference may hold only printable ASCII without spaces, at most 512 characters")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidRevision(f"image digest in {text!r} must be sha256: followed by 64 lowercase hex digits")
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidRevision(f"image tag {tag!r} is not valid: letters, digits, '_', '.', '-', at most 128")
    registry, path = _split_registry(rest, text)
    components = path.split("/")
    for component in components:
        if not _PATH_COMPONENT.match(component):
            raise InvalidRevision(
                f"image repository {path!r} in {text!r} is not valid: lowercase letters and digits "
                "separated by '.', '_', '__' or '-', components joined by '/'"
            )
    name_length = len(rest)
    if name_length > _MAX_NAME_LENGTH:
        raise InvalidRevision(f"image name in {text!r} is longer than {_MAX_NAME_LENGTH} characters")
    return ImageRef(registry=registry, repository=path, tag=tag, digest=digest)


def _split_registry(name: str, text: str) -> tuple[str | None, str]:
    if not name:
        raise InvalidRevision(f"image reference {text!r} has no repository name")
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.match(first):
            raise InvalidRevision(f"image registry {first!r} in {text!r} is not a valid host[:port]")
        if not remainder:
            raise InvalidRevision(f"image reference {text!r} has no repository after the registry")
        return first, remainder
    return None, name
