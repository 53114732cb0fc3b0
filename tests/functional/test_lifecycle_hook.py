"""codedeploy_hook: every hook execution gets exactly one status, Succeeded only when the checks pass."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import localaws
from app import app
from chalicelib.domain.spec import TargetSpec
from tests.conftest import World
from tests.events import load_event
from tests.functional.support import invoke, spec

APPSPEC = '{"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {}}}]}'


class Health(BaseHTTPRequestHandler):
    status = 200
    body = b"ok"

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()
    Health.status, Health.body = 200, b"ok"


class Trickle:
    """A real HTTP server that answers one byte a second: fast headers and a slow body, or a slow status line."""

    def __init__(self, fast_headers: bool) -> None:
        self.fast_headers = fast_headers
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/health"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(4096)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n"
            if self.fast_headers:
                connection.sendall(head)
            slow = (b"" if self.fast_headers else head) + b"x" * 30
            for byte in slow:
                if self.stop.wait(1.0):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:          # the probe gave up and closed its end
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture(params=[False, True], ids=["slow status line", "slow body"])
def trickle(request: pytest.FixtureRequest) -> Iterator[Trickle]:
    server = Trickle(fast_headers=request.param)
    yield server
    server.close()


def test_the_probe_deadline_covers_the_whole_request(trickle: Trickle) -> None:
    from chalicelib.adapters.http_probe import probe

    started = time.monotonic()
    result = probe(trickle.url, 2.0)
    elapsed = time.monotonic() - started

    assert elapsed < 3.5, f"a 2 s probe took {elapsed:.1f} s"
    assert result.status is None and "no complete answer within 2 s" in result.error


def test_a_trickling_endpoint_fails_the_hook_within_its_timeout(aws: World, trickle: Trickle) -> None:
    event = hook_event(ecs_deployment(aws, {"url": trickle.url, "timeout_seconds": 2}))
    started = time.monotonic()
    answer = invoke(event, "codedeploy_hook")
    assert time.monotonic() - started < 5
    assert answer["status"] == "Failed" and "no complete answer within 2 s" in answer["why"]
    assert reported(event) == "Failed"


def test_every_stage_gives_the_hook_time_to_probe_and_report() -> None:
    """CodeDeploy gets no status at all if the function times out first: its Lambda timeout covers the longest probe
    a spec allows plus the AWS calls around it."""
    from chalicelib.domain.spec import HookChecks
    from chalicelib.services.codedeploy_hook import REPORT_MARGIN_SECONDS

    longest = next(m.le for m in HookChecks.model_fields["timeout_seconds"].metadata if hasattr(m, "le"))
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    for name, stage in config["stages"].items():
        hook = stage.get("lambda_functions", {}).get("codedeploy_hook", {})
        assert hook.get("lambda_timeout", 60) >= longest + REPORT_MARGIN_SECONDS, name


def ecs_deployment(aws: World, checks: dict[str, Any] | None) -> str:
    codedeploy = aws.client("codedeploy")
    codedeploy.create_application(applicationName="web-ecs", computePlatform="ECS")
    codedeploy.create_deployment_group(applicationName="web-ecs", deploymentGroupName="web-ecs-prod",
                                       serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy")
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        store().put_target(TargetSpec.model_validate(spec(
            target="web-ecs", codedeploy={"application": "web-ecs", "deployment_group": "web-ecs-prod",
                                          "hook_checks": checks})), "test")
    return str(codedeploy.create_deployment(
        applicationName="web-ecs", deploymentGroupName="web-ecs-prod",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": APPSPEC}})["deploymentId"])


def hook_event(deployment_id: str) -> dict[str, Any]:
    event = load_event("codedeploy_lifecycle_hook")
    event["DeploymentId"] = deployment_id
    return event


def reported(event: dict[str, Any]) -> str:
    return localaws.hook_statuses()[(event["DeploymentId"], event["LifecycleEventHookExecutionId"])]


def test_healthy_url_reports_succeeded(aws: World, health_server: str) -> None:
    event = hook_event(ecs_deployment(aws, {"url": health_server}))
    assert invoke(event, "codedeploy_hook")["status"] == "Succeeded"
    assert reported(event) == "Succeeded"


@pytest.mark.parametrize("status, body, checks, why", [
    (503, b"down", {}, "answered 503"),
    (200, b"version 1.2", {"expect_digest": True}, "expected image digest"),
])
def test_failing_checks_report_failed(aws: World, health_server: str, status: int, body: bytes,
                                      checks: dict[str, Any], why: str) -> None:
    Health.status, Health.body = status, body
    event = hook_event(ecs_deployment(aws, {"url": health_server, **checks}))
    answer = invoke(event, "codedeploy_hook")
    assert answer["status"] == "Failed" and why in answer["why"]
    assert reported(event) == "Failed"


def test_unreachable_url_reports_failed_within_the_timeout(aws: World) -> None:
    event = hook_event(ecs_deployment(aws, {"url": "http://127.0.0.1:9/health", "timeout_seconds": 2}))
    assert invoke(event, "codedeploy_hook")["status"] == "Failed"
    assert reported(event) == "Failed"


def test_an_internal_error_still_reports_failed(aws: World, health_server: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services import codedeploy_hook

    def explode(self: Any, deployment_id: str) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(codedeploy_hook.LifecycleHookService, "_check", explode)
    event = hook_event(ecs_deployment(aws, {"url": health_server}))
    assert invoke(event, "codedeploy_hook")["status"] == "Failed"
    assert reported(event) == "Failed"


def test_unknown_deployment_still_tries_to_report_and_says_why_it_could_not(aws: World) -> None:
    # The check fails (no such deployment), berth reports Failed anyway, and CodeDeploy refuses the report: the error
    # surfaces, so Lambda's retry and the function's error metric show it.
    with pytest.raises(Exception, match="PutLifecycleEventHookExecutionStatus failed with DeploymentDoesNotExist"):
        invoke(hook_event("d-NOSUCH123"), "codedeploy_hook")


def test_no_checks_configured_succeeds(aws: World) -> None:
    event = hook_event(ecs_deployment(aws, None))
    assert invoke(event, "codedeploy_hook")["status"] == "Succeeded"
