"""Every boto3 client berth builds retries in botocore's `standard` mode and gives up on a dead endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import clients
from chalicelib.domain.job import ArtifactCredentials


@pytest.fixture
def region(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("BERTH_TABLE", "berth-test")
    clients.reset_clients()
    yield
    clients.reset_clients()


def _assert_standard(client: object) -> None:
    config = client.meta.config    # type: ignore[attr-defined]
    assert config.retries["mode"] == "standard"
    assert 1 <= config.retries.get("max_attempts", 3) <= 5
    assert 0 < config.connect_timeout <= 10
    assert 0 < config.read_timeout <= 30     # well inside the shortest Lambda timeout berth uses (60 s)


@pytest.mark.parametrize("service", ["ssm", "ec2", "ecr", "dynamodb", "codepipeline", "codedeploy", "scheduler",
                                     "s3"])
def test_clients_use_standard_retries_and_bounded_timeouts(region: None, service: str) -> None:
    _assert_standard(clients.client(service))
    _assert_standard(clients.cached_client(service))


def test_the_artifact_client_too(region: None) -> None:
    credentials = ArtifactCredentials.model_validate(
        {"accessKeyId": "AKIA", "secretAccessKey": "secret", "sessionToken": "token"})
    _assert_standard(clients.artifact_s3_client(credentials))
