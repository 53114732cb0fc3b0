"""Shared fixtures: an emulated AWS account (moto plus localaws) with berth's table provisioned."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tools import emulated

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "berth-test"


@pytest.fixture(autouse=True)
def _environ_restored() -> Iterator[None]:
    """Every test leaves the environment as it found it. chalice's test client applies a stage's variables (and
    AWS_EXECUTION_ENV) around each invocation and does not always take them all back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


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

    def launch(self, count: int, tags: dict[str, str], architecture: str = "x86_64") -> list[str]:
        return emulated.launch(self.client("ec2"), count, tags, architecture)

    def push_image(self, repository: str, tag: str, content: str = "v1", platforms: list[str] | None = None) -> str:
        return emulated.push_image(self.client("ecr"), repository, tag, content, platforms)[1]

    def image_uri(self, repository: str, tag: str) -> str:
        return f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{repository}:{tag}"

    def put_artifact(self, files: dict[str, str | bytes], bucket: str = "codepipeline-artifacts",
                     key: str = "pipeline/BuildArtif/abc123") -> tuple[str, str]:
        return emulated.put_artifact(self.client("s3"), files, bucket, key)


@pytest.fixture
def aws(aws_env: None) -> Iterator[World]:
    from moto import mock_aws

    import localaws
    from chalicelib import clients
    from tools.provision import provision

    localaws.install()
    with mock_aws():
        clients.reset_clients()
        world = World()
        provision("test", world.client("dynamodb"))
        yield world
    clients.reset_clients()
