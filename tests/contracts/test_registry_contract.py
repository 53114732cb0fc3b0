"""ImageRegistry: ECR in memory (tests/fakes/ecr.py) and the adapter on moto's ECR answer alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest

from chalicelib.adapters.ecr import ImageRegistry
from chalicelib.domain.errors import ImageNotFound
from chalicelib.domain.image_ref import parse_image_ref
from tests.fakes.ecr import FakeImageRegistry
from tools import emulated

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


Push = Callable[..., str]


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def registry(request: pytest.FixtureRequest) -> Iterator[tuple[ImageRegistry, Push]]:
    """The registry and a way to push a tag (returning its digest): `push(repository, tag, platforms=None)`."""
    if request.param == "fake":
        fake = FakeImageRegistry()
        yield fake, lambda repository, tag, platforms=None: fake.push(repository, tag, platforms=platforms)
    else:
        request.getfixturevalue("moto_account")
        ecr = boto3.client("ecr", region_name="us-east-1")
        yield ImageRegistry(lambda region: ecr), lambda repository, tag, platforms=None: emulated.push_image(
            ecr, repository, tag, platforms=platforms)[1]


def test_a_pushed_tag_resolves_to_its_digest(registry: tuple[ImageRegistry, Push]) -> None:
    images, push = registry
    digest = push("web", "v1")
    assert images.resolve(parse_image_ref(f"{REGISTRY}/web:v1")) == parse_image_ref(f"{REGISTRY}/web:v1@{digest}")
    assert images.resolve(parse_image_ref(f"{REGISTRY}/web@{digest}")) == parse_image_ref(f"{REGISTRY}/web@{digest}")


@pytest.mark.parametrize("image", [f"{REGISTRY}/web:v9", f"{REGISTRY}/nope:v1", f"{REGISTRY}/web@sha256:" + "0" * 64])
def test_what_ecr_does_not_hold_is_not_found(registry: tuple[ImageRegistry, Push],
                                             image: str) -> None:
    images, push = registry
    push("web", "v1")
    with pytest.raises(ImageNotFound, match="is not in ECR"):
        images.resolve(parse_image_ref(image))


def test_an_image_outside_ecr_comes_back_as_given(registry: tuple[ImageRegistry, Push]) -> None:
    images, _ = registry
    assert images.resolve(parse_image_ref("docker.io/library/nginx:1.25")) == parse_image_ref(
        "docker.io/library/nginx:1.25")


def test_an_image_index_names_its_platforms_and_a_single_manifest_none(registry: tuple[ImageRegistry, Push]) -> None:
    images, push = registry
    multi = push("web", "multi", platforms=["amd64", "arm64", "unknown"])
    single = push("web", "single")
    assert images.platforms(parse_image_ref(f"{REGISTRY}/web@{multi}")) == frozenset({"amd64", "arm64"})
    assert images.platforms(parse_image_ref(f"{REGISTRY}/web@{single}")) is None
    assert images.platforms(parse_image_ref("docker.io/library/nginx:1.25")) is None
    with pytest.raises(ImageNotFound):
        images.platforms(parse_image_ref(f"{REGISTRY}/web@sha256:" + "0" * 64))


SetScan = Callable[[str, str, str, dict[str, int]], None]


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def scans(request: pytest.FixtureRequest) -> Iterator[tuple[ImageRegistry, Push, SetScan]]:
    """The registry, a push, and a way to set an image's scan (repository, digest, status, counts)."""
    if request.param == "fake":
        fake = FakeImageRegistry()
        yield (fake, lambda repository, tag: fake.push(repository, tag),
               lambda repository, digest, status, counts: fake.set_scan(digest, status, counts))
    else:
        request.getfixturevalue("moto_account")
        import localaws

        ecr = boto3.client("ecr", region_name="us-east-1")
        yield (ImageRegistry(lambda region: ecr), lambda repository, tag: emulated.push_image(ecr, repository, tag)[1],
               localaws.set_scan_findings)


def test_an_images_scan_status_and_counts_and_none_without_a_scan(
        scans: tuple[ImageRegistry, Push, SetScan]) -> None:
    images, push, set_scan = scans
    digest = push("web", "v1")
    image = parse_image_ref(f"{REGISTRY}/web@{digest}")
    assert images.scan(image).status == "NONE"
    set_scan("web", digest, "COMPLETE", {"CRITICAL": 1, "LOW": 2})
    assert (images.scan(image).status, images.scan(image).counts) == ("COMPLETE", {"CRITICAL": 1, "LOW": 2})
    set_scan("web", digest, "IN_PROGRESS", {})
    assert (images.scan(image).status, images.scan(image).counts) == ("IN_PROGRESS", {})
    with pytest.raises(ImageNotFound):
        images.scan(parse_image_ref(f"{REGISTRY}/web@sha256:" + "0" * 64))
