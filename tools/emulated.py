"""Filling an emulated account (moto) with what a deployment needs: a tagged fleet, an ECR image, an artifact.

Shared by the demo and the tests, so both set the world up the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any


def launch(ec2: Any, count: int, tags: dict[str, str], architecture: str = "x86_64") -> list[str]:
    """Start `count` Linux instances carrying `tags` (arm64: Graviton ones, from an arm64 AMI); their ids, sorted."""
    image_id = _linux_image(ec2) if architecture == "x86_64" else _image_of(ec2, architecture)
    reservation = ec2.run_instances(
        ImageId=image_id, MinCount=count, MaxCount=count,
        InstanceType="t3.micro" if architecture == "x86_64" else "t4g.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    return sorted(instance["InstanceId"] for instance in reservation["Instances"])


# One of moto's built-in Linux AMIs: SSM refuses AWS-RunShellScript on Windows instances, and so does localaws.
LINUX_AMI = "ami-1e749f67"


def _image_of(ec2: Any, architecture: str) -> str:
    """A Linux AMI of `architecture` among moto's own (moto takes an instance's Architecture from its AMI, and a
    registered AMI has none)."""
    return str(ec2.describe_images(ImageIds=[_AMI_OF[architecture]])["Images"][0]["ImageId"])


_AMI_OF = {"arm64": "ami-0e9271c829888680e"}     # moto's Amazon Linux 2022 for arm64


def _linux_image(ec2: Any) -> str:
    """The Linux AMI, looked up by id (listing all of moto's images costs a second a call)."""
    found = ec2.describe_images(ImageIds=[LINUX_AMI])["Images"]
    if found and found[0].get("Platform") != "windows":
        return LINUX_AMI
    images = ec2.describe_images()["Images"]
    return str(next(image["ImageId"] for image in images if image.get("Platform") != "windows"))


def push_image(ecr: Any, repository: str, tag: str, content: str = "v1",
               platforms: list[str] | None = None) -> tuple[str, str]:
    """Put an image manifest under `tag` (an OCI image index of `platforms` when given, as `docker buildx` pushes a
    multi-platform image); returns (the image URI with its tag, its digest)."""
    try:
        repo = ecr.create_repository(repositoryName=repository)["repository"]
    except ecr.exceptions.RepositoryAlreadyExistsException:
        repo = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    # moto derives an image's digest from its layers' digests: one layer per (content, tag) gives each its own.
    layer_digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}:{content}".encode()).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": layer_digest, "size": 1,
                                      "mediaType": "application/vnd.docker.container.image.v1+json"},
                           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                       "size": 1, "digest": layer_digest}]})
    if platforms is not None:
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                               "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
                                              "digest": "sha256:" + hashlib.sha256(
                                                  f"{layer_digest}:{arch}".encode()).hexdigest(),
                                              "platform": {"architecture": arch, "os": "linux"}}
                                             for arch in platforms]})
    try:
        digest = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)["image"]["imageId"][
            "imageDigest"]
    except ecr.exceptions.ImageAlreadyExistsException:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
        digest = found[0]["imageDigest"]
    return f"{repo['repositoryUri']}:{tag}", str(digest)


def put_artifact(s3: Any, files: dict[str, str | bytes], bucket: str, key: str) -> tuple[str, str]:
    """Upload a pipeline artifact: a zip holding `files` at its top level."""
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return bucket, key
