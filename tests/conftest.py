"""Shared fixtures: an emulated AWS account (moto plus localaws) with berth's table provisioned."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "berth-test"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                        "BERTH_TABLE": TABLE, "BERTH_LOCK_WAIT_SECONDS": "600"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass
class World:
    """An emulated account and the helpers tests use to set it up."""

    region: str = REGION
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=self.region)
        return self.clients[service]

    def launch(self, count: int, tags: dict[str, str]) -> list[str]:
        ec2 = self.client("ec2")
        image_id = ec2.describe_images()["Images"][0]["ImageId"]
        reservation = ec2.run_instances(
            ImageId=image_id, MinCount=count, MaxCount=count, InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
        return sorted(inst["InstanceId"] for inst in reservation["Instances"])

    def push_image(self, repository: str, tag: str, content: str = "v1") -> str:
        ecr = self.client("ecr")
        try:
            ecr.create_repository(repositoryName=repository)
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"digest": "sha256:" + content.encode().hex().ljust(64, "0")[:64],
                                          "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"},
                               "layers": []})
        result = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
        return str(result["image"]["imageId"]["imageDigest"])

    def image_uri(self, repository: str, tag: str) -> str:
        return f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{repository}:{tag}"

    def put_artifact(self, files: dict[str, str | bytes], bucket: str = "codepipeline-artifacts",
                     key: str = "pipeline/BuildArtif/abc123") -> tuple[str, str]:
        s3 = self.client("s3")
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        return bucket, key


@pytest.fixture
def aws(aws_env: None) -> Iterator[World]:
    from moto import mock_aws

    import localaws
    from chalicelib import wiring
    from tools.provision import provision

    localaws.install()
    with mock_aws():
        wiring.reset_clients()
        world = World()
        provision("test", world.client("dynamodb"))
        yield world
    wiring.reset_clients()
