"""What the benchmarks share: berth's Lambdas invoked in this process against an embedded AWS, and a count of the AWS
calls berth makes, taken at botocore's edge (as tests/reliability/faults.py does).

The embedded AWS runs either in this process (moto's `mock_aws`, fast to fill) or as a localaws server in a child
process (`tools.embedded.EmbeddedAws`), so that this process's CPU time (`time.process_time`) is berth's alone.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGE = "test"          # .chalice/config.json's stage with retries configured
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_REGION": "us-east-1"}


@dataclass
class CallCounter:
    """AWS calls made while `counting` is on, as "service.Operation" -> count."""

    calls: Counter[str] = field(default_factory=Counter)
    counting: bool = False

    def total(self) -> int:
        return sum(self.calls.values())

    def of(self, operation: str) -> int:
        return sum(n for name, n in self.calls.items() if name.endswith("." + operation))


@contextmanager
def counted_calls() -> Iterator[CallCounter]:
    from botocore.client import BaseClient

    counter = CallCounter()
    original = BaseClient._make_api_call

    def wrapped(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if counter.counting:
            counter.calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = wrapped
    try:
        yield counter
    finally:
        BaseClient._make_api_call = original


@dataclass
class Measured:
    """One handler invocation: its reply, berth's CPU seconds, and its wall seconds."""

    reply: Any
    cpu: float
    wall: float


class Berth:
    """berth's Lambdas, invoked through `chalice.test.Client` as the tests do, timed and with their calls counted."""

    def __init__(self, counter: CallCounter) -> None:
        from chalice.test import Client

        from app import app

        self._client = Client(app, stage_name=STAGE)
        self.counter = counter

    def invoke(self, function: str, event: dict[str, Any]) -> Measured:
        self.counter.counting = True
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            reply = self._client.lambda_.invoke(function, event).payload
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            self.counter.counting = False
        return Measured(reply, cpu, wall)


@contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables for the block; put back what was there after it."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def stage_env() -> Iterator[None]:
    """The stage's environment (berth's settings), as a handler sees it during an invocation."""
    from tools.provision import stage_environment

    with patched_environ(dict(stage_environment(STAGE))):
        yield


def prepare_account() -> None:
    """berth's table in whatever AWS this process points at; fresh clients for berth. Seeding goes through berth's own
    botocore session, as a Lambda holds only that one (a second session would count its models twice in memory)."""
    from chalicelib import clients
    from tools.provision import provision

    clients.reset_clients()
    provision(STAGE, seeding_client("dynamodb"))


def seeding_client(service: str) -> Any:
    """A client on berth's own botocore session, for filling the account."""
    from chalicelib import clients

    return clients.client(service, os.environ["AWS_DEFAULT_REGION"])


@contextmanager
def credentials() -> Iterator[None]:
    with patched_environ({**CREDENTIALS, "AWS_ENDPOINT_URL": None, "AWS_PROFILE": None}):
        yield


def job_event(job_id: str, user_parameters: str, token: str | None = None) -> dict[str, Any]:
    """AWS's sample CodePipeline job event with no input artifact (the image is in UserParameters)."""
    event: dict[str, Any] = json.loads((ROOT / "tests" / "events" / "codepipeline_job.json").read_text())
    job = event["CodePipeline.job"]
    job["id"] = job_id
    job["data"]["actionConfiguration"]["configuration"]["UserParameters"] = user_parameters
    job["data"]["inputArtifacts"] = []
    if token is not None:
        job["data"]["continuationToken"] = token
    return event


def spec(target: str, tags: dict[str, str], image: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"target": target, "instances": {"tags": tags},
                            "container": {"name": "web", "ports": ["5000:5000"]},
                            "rollout": {"max_concurrency": "100%", "max_errors": "0"}, "image": image}
    body.update(overrides)
    return body


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@contextmanager
def quiet() -> Iterator[None]:
    """berth's JSON logs and EMF metrics go to stdout in Lambda; here they go to /dev/null (written all the same,
    so their cost stays in the measurement)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, sink):
            os.close(fd)
