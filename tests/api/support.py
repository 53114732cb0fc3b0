"""Helpers shared by the API and CLI tests: JSON calls through chalice's test client, a target spec, an identity."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice import local
from chalice.test import Client

from app import app
from chalicelib.adapters.store import DeploymentStore
from tests.conftest import TABLE, World

TAGS = {"app": "web", "env": "prod"}
JSON = {"content-type": "application/json"}


def spec(name: str = "web", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"target": name, "instances": {"tags": TAGS}, "container": {"name": "web",
                                                                                      "ports": ["5000:5000"]}}
    body.update(overrides)
    return body


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        return dict(self.body["error"])


def call(method: str, path: str, body: Any = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    with Client(app, stage_name="test") as client:
        response = client.http.request(method, path, headers={**JSON, **(headers or {})}, body=data)
    text = response.body.decode() if response.body else ""
    return Reply(response.status_code, dict(response.headers), json.loads(text) if text else None)


def store(world: World) -> DeploymentStore:
    return DeploymentStore(world.client("dynamodb"), TABLE)


def hold_lock(world: World, target: str, deployment_id: str, expires_at: int) -> None:
    """The target's lock, held by a deployment this test made up (as DeploymentService.start writes it)."""
    world.client("dynamodb").put_item(TableName=TABLE, Item={
        "pk": {"S": f"TARGET#{target}"}, "sk": {"S": "LOCK"}, "deployment_id": {"S": deployment_id},
        "acquired_at": {"N": "0"}, "expires_at": {"N": str(expires_at)}})


@contextlib.contextmanager
def identity(monkeypatch: pytest.MonkeyPatch, user_arn: str | None = None, caller: str | None = None
             ) -> Iterator[None]:
    """Make chalice's local gateway put an IAM identity in requestContext, as API Gateway does for AWS_IAM routes."""
    original = local.LambdaEventConverter.create_lambda_event

    def with_identity(self: Any, *args: Any, **kwargs: Any) -> Any:
        event = original(self, *args, **kwargs)
        event["requestContext"]["identity"].update({"userArn": user_arn, "caller": caller,
                                                    "accountId": "123456789012"})
        return event

    with monkeypatch.context() as patch:
        patch.setattr(local.LambdaEventConverter, "create_lambda_event", with_identity)
        yield


def register(world: World, name: str = "web", instances: int = 2, **overrides: Any) -> list[str]:
    ids = world.launch(instances, TAGS) if instances else []
    reply = call("PUT", f"/targets/{name}", spec(name, **overrides))
    assert reply.status == 200, reply
    return ids


def deploy(name: str = "web", **body: Any) -> Reply:
    return call("POST", f"/targets/{name}/deployments", body or None)


def settle(deployment_id: str, rounds: int = 10) -> dict[str, Any]:
    """Poll GET /deployments/{id} (which refreshes it) until it is final."""
    for _ in range(rounds):
        reply = call("GET", f"/deployments/{deployment_id}")
        assert reply.status == 200, reply
        if reply.body["final"]:
            return dict(reply.body)
    raise AssertionError(f"deployment {deployment_id} did not finish in {rounds} polls")


def deployed(world: World, instances: int = 2, **overrides: Any) -> list[str]:
    """A registered target `web` whose current revision is web:v1, deployed to `instances` new instances."""
    ids = register(world, instances=instances, **overrides)
    push_image(world, "web", "v1")
    started = deploy(image=world.image_uri("web", "v1"))
    assert started.status == 202, started
    assert settle(started.body["deployment_id"])["status"] == "SUCCEEDED"
    return ids


def push_image(world: World, repository: str, tag: str) -> str:
    """Put an image whose digest differs per tag (moto derives it from the layers); returns its digest."""
    import hashlib

    ecr = world.client("ecr")
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    layer = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": layer, "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"},
        "layers": [{"digest": layer, "size": 1, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"}]})
    try:
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    except ecr.exceptions.ImageAlreadyExistsException:
        pass
    image = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"][0]
    return str(image["imageDigest"])
