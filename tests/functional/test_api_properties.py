"""Property-based: schemathesis generates requests from the OpenAPI document the API serves, against `chalice local`
on loopback backed by an embedded AWS (`python -m localaws serve`). No generated request, valid or not, may get a 5xx.

`chalice local` does not enforce AWS_IAM; the authorization checks live in test_api_contract.py.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tools import emulated  # noqa: E402
from tools.embedded import EmbeddedAws, chalice_local  # noqa: E402
from tools.provision import provision  # noqa: E402

pytestmark = pytest.mark.slow
MIN_REQUESTS = 500
EXAMPLES = 45     # per operation and generation mode; small operations run out of distinct requests sooner


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """berth's API under `chalice local` (stage test), on an embedded AWS seeded with a fleet and an image."""
    with EmbeddedAws() as aws:
        seed(aws.endpoint)
        with chalice_local("test") as url:
            yield url


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
    """A registered target, one of its deployments and a logs command, so generated requests also reach existing
    records."""
    send(f"{api_url}/targets/web", "PUT", {"instances": {"tags": {"app": "web", "env": "prod"}},
                                           "container": {"name": "web", "ports": ["5000:5000"]}})
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"
    deployment = send(f"{api_url}/targets/web/deployments", "POST", {"image": image})
    with urllib.request.urlopen(f"{api_url}/deployments/{deployment['deployment_id']}", timeout=30) as reply:
        assert json.loads(reply.read())["status"] == "SUCCEEDED"  # a GET follows it; the target is free again
    with urllib.request.urlopen(f"{api_url}/targets/web/logs", timeout=30) as reply:
        logs = json.loads(reply.read())
    return {"name": "web", "deployment_id": deployment["deployment_id"], "command_id": logs["command_id"]}


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
