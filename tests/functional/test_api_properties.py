"""Property-based: schemathesis generates requests from the OpenAPI document the API serves, against `chalice local`
on loopback backed by an embedded AWS (`python -m localaws serve`). No generated request, valid or not, may get a 5xx.

`chalice local` does not enforce AWS_IAM; the authorization checks live in test_api_contract.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tools import emulated  # noqa: E402
from tools.provision import provision  # noqa: E402

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]
MIN_REQUESTS = 500
EXAMPLES = 45     # per operation and generation mode; small operations run out of distinct requests sooner


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for(url: str, process: subprocess.Popen[Any], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("servers")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    processes: list[subprocess.Popen[Any]] = []
    try:
        aws_log = logs / "localaws.log"
        with aws_log.open("w") as err:
            localaws = subprocess.Popen([sys.executable, "-m", "localaws", "serve", "--port", "0"], cwd=PROJECT,
                                        env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        processes.append(localaws)
        assert localaws.stdout is not None
        line = localaws.stdout.readline().strip()
        assert line.startswith("endpoint="), f"localaws said {line!r}: {aws_log.read_text()[-2000:]}"
        endpoint = line.removeprefix("endpoint=")
        env["AWS_ENDPOINT_URL"] = endpoint
        seed(endpoint)

        port = free_port()
        chalice_log = logs / "chalice.log"
        with chalice_log.open("w") as out:
            chalice = subprocess.Popen(
                [str(Path(sys.executable).with_name("chalice")), "local", "--host", "127.0.0.1", "--port", str(port),
                 "--stage", "test", "--no-autoreload"], cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
        processes.append(chalice)
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/openapi.json", chalice, chalice_log)
        yield url
    finally:
        for process in reversed(processes):
            stop(process)
        if processes and processes[0].stdout:
            processes[0].stdout.close()


def seed(endpoint: str) -> None:
    """The stage's table, two running instances tagged for `web`, and an image, so some requests reach AWS."""
    def client(service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", aws_session_token="testing")

    provision("test", client("dynamodb"))
    emulated.launch(client("ec2"), 2, {"app": "web", "env": "prod"})
    emulated.push_image(client("ecr"), "web", "v1")


def send(url: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def known_resources(api_url: str) -> dict[str, str]:
    """A registered target and one of its deployments, so generated requests also reach existing records."""
    send(f"{api_url}/targets/web", "PUT", {"instances": {"tags": {"app": "web", "env": "prod"}},
                                           "container": {"name": "web", "ports": ["5000:5000"]}})
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"
    deployment = send(f"{api_url}/targets/web/deployments", "POST", {"image": image})
    with urllib.request.urlopen(f"{api_url}/deployments/{deployment['deployment_id']}", timeout=30) as reply:
        assert json.loads(reply.read())["status"] == "SUCCEEDED"  # a GET follows it; the target is free again
    return {"name": "web", "deployment_id": deployment["deployment_id"]}


def test_no_generated_request_gets_a_5xx(api_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    known = known_resources(api_url)
    seen: Counter[str] = Counter()
    failures: list[str] = []
    log: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        fixed = {name: known[name] for name in names}
        runs = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
        if fixed:
            runs.append((GenerationMode.POSITIVE, fixed))
        for mode, path_parameters in runs:

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
            def run(case: Any) -> None:
                response = case.call(base_url=api_url, timeout=30)
                seen[f"{response.status_code}"] += 1
                seen["total"] += 1
                exchange = (f"{case.method} {case.formatted_path} {case.query} {case.body!r:.200} -> "
                            f"{response.status_code} {response.text[:300]}")
                log.append(exchange)
                if response.status_code >= 500:
                    failures.append(exchange)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                pass  # e.g. no invalid request exists for an operation without parameters
    print(f"schemathesis: {dict(sorted(seen.items()))}")
    assert not failures, failures[:5]
    assert seen["total"] >= MIN_REQUESTS, seen
    assert seen["200"] > 0 and seen["202"] > 0 and seen["404"] > 0, [e for e in log if "/targets/web/" in e][:5]
