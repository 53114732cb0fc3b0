"""The Lambda package as docs/deploy.md builds it (`chalice package`, then tools.precompile), run where Lambda runs it:
unzipped, on a Python that has boto3 and botocore and nothing else, writing no bytecode (/var/task is read-only). The
dev venv holds every package berth's tests use, so a module the package leaves out (one imported lazily inside a
function, say) fails only here, as it would only in AWS."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.events import pipeline_job_event
from tests.packaging.conftest import REGION, ROOT, Packaged, unzipped
from tools import emulated
from tools.embedded import DEMO_CREDENTIALS, EmbeddedAws
from tools.provision import provision

pytestmark = pytest.mark.slow
ACCOUNT = "123456789012"          # the embedded AWS's account
TAGS = {"app": "web", "env": "packaged"}

# Lambda puts the function's code first on sys.path; `-I` keeps the caller's environment and directory out of it.
IMPORTS = """
import json, sys
sys.path.insert(0, sys.argv[1])
failed = {}
for statement in json.load(sys.stdin):
    try:
        exec(statement, {})
    except Exception as exc:
        failed[statement] = f"{type(exc).__name__}: {exc}"
origins = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("app", "chalicelib", "pydantic")}
print(json.dumps({"failed": failed, "origins": origins}))
"""
# Which modules Python compiled from source (no usable bytecode) while importing them.
COMPILES = """
import importlib.machinery, json, sys
sys.path.insert(0, sys.argv[1])
compiled, compile_source = [], importlib.machinery.SourceFileLoader.source_to_code
def counted(self, data, path, *args, **kwargs):
    compiled.append(path)
    return compile_source(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = counted
for statement in json.load(sys.stdin):
    exec(statement, {})
print(json.dumps(compiled))
"""
# Also reports which AWS clients the invocation created (counted at botocore's edge) and whether boto3 was loaded.
HANDLER = """
import json, sys
sys.path.insert(0, sys.argv[1])
event = json.load(sys.stdin)
from botocore.client import ClientCreator
created, create = [], ClientCreator.create_client
def counted(self, service_name, *args, **kwargs):
    created.append(service_name)
    return create(self, service_name, *args, **kwargs)
ClientCreator.create_client = counted
import app

class Context:
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"
    function_name = "berth-dev-pipeline_job"

reply = app.pipeline_job(event, Context())
print(json.dumps({"reply": reply, "clients": sorted(created), "boto3": "boto3" in sys.modules,
                  "s3transfer": "s3transfer" in sys.modules}))
"""


def import_statements() -> list[str]:
    """Every import app.py and chalicelib name, wherever they are (top level, inside functions), as statements."""
    statements = set()
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    for path in files:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        if path.name == "__init__.py":
            package = ".".join(path.relative_to(ROOT).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                statements |= {f"import {alias.name}" for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                module = _absolute(node.module, node.level, package)
                statements |= {f"from {module} import {alias.name}" for alias in node.names if alias.name != "*"}
    return sorted(statements)


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return str(module)
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def lambda_environment(packaged: Packaged, endpoint: str) -> dict[str, str]:
    """What Lambda sets for the dev stage's pipeline_job: the template's variables (references resolved to plausible
    values), the region and credentials, pointed at the embedded AWS."""
    variables = packaged.resources["PipelineJob"]["Properties"]["Environment"]["Variables"]
    env = {name: _resolved(value, packaged.stage) for name, value in variables.items()}
    return {**env, **DEMO_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_NAME": f"berth-{packaged.stage}-pipeline_job", "PATH": os.environ["PATH"]}


def _resolved(value: Any, stage: str) -> str:
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for name, replacement in {"${AWS::Partition}": "aws", "${AWS::Region}": REGION,
                                  "${AWS::AccountId}": ACCOUNT, "${Stage}": stage}.items():
            text = text.replace(name, replacement)
        return str(text)
    if "Fn::GetAtt" in value:
        resource, _ = value["Fn::GetAtt"]
        service = "sqs" if "Queue" in resource else "iam"
        return f"arn:aws:{service}:{REGION if service == 'sqs' else ''}:{ACCOUNT}:{resource}"
    raise AssertionError(f"no stand-in for {value!r}")


def run_in_runtime(python: Path, task_root: Path, script: str, stdin: Any, env: dict[str, str] | None = None
                   ) -> Any:
    # -B: /var/task is read-only in Lambda, so Python writes no bytecode there either.
    proc = subprocess.run([str(python), "-I", "-B", "-c", script, str(task_root)], input=json.dumps(stdin),
                          capture_output=True, text=True, timeout=120, env=env or {"PATH": os.environ["PATH"]},
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_import_walk_sees_lazy_imports() -> None:
    statements = import_statements()
    assert "import yaml" in statements                              # inside check_appspec
    assert "from chalicelib.services.pipeline_job import PipelineJobService" in statements   # inside a function
    assert "from chalicelib.domain.errors import InvalidRevision" in statements             # a relative import


def test_the_runtime_has_only_boto3(bare_runtime: Path) -> None:
    found = run_in_runtime(bare_runtime, Path("/nonexistent"), IMPORTS,
                           ["import boto3", "import botocore", "import pydantic", "import yaml", "import chalice"])
    assert set(found["failed"]) == {"import pydantic", "import yaml", "import chalice"}


def test_every_module_the_code_names_imports_from_the_package(bare_runtime: Path, task_root: Path) -> None:
    handler_module = "import app"
    found = run_in_runtime(bare_runtime, task_root, IMPORTS, [handler_module, *import_statements()])
    assert found["failed"] == {}, "the Lambda package lacks what these need:\n" + "\n".join(
        f"  {statement}: {error}" for statement, error in found["failed"].items())
    for name, origin in found["origins"].items():
        assert origin and Path(origin).is_relative_to(task_root), (name, origin)


def test_the_deployable_package_carries_the_bytecode_lambda_runs(bare_runtime: Path, task_root: Path) -> None:
    compiled = run_in_runtime(bare_runtime, task_root, COMPILES, ["import app", *import_statements()])
    assert [path for path in compiled if Path(path).is_relative_to(task_root)] == []


def test_without_it_every_cold_start_compiles_the_package(bare_runtime: Path, packaged: dict[str, Packaged],
                                                           tmp_path: Path) -> None:
    """What tools.precompile is for: `chalice package` alone ships no bytecode, and /var/task is read-only."""
    raw = unzipped(packaged["dev"].directory / "deployment.zip", tmp_path / "task")
    compiled = run_in_runtime(bare_runtime, raw, COMPILES, ["import app", *import_statements()])
    from_package = {Path(path).relative_to(raw).parts[0] for path in compiled if Path(path).is_relative_to(raw)}
    assert {"app.py", "chalicelib", "pydantic", "aws_lambda_powertools", "chalice", "yaml"} <= from_package


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedAws]:
    """A localaws server in a child process, with berth's dev table, a tagged fleet and an ECR image."""
    with EmbeddedAws() as aws:
        provision("dev", boto3.client("dynamodb", region_name=REGION))
        emulated.launch(boto3.client("ec2", region_name=REGION), 2, TAGS)
        emulated.push_image(boto3.client("ecr", region_name=REGION), "web", "20240912")
        yield aws


def run_first_invocation(embedded: EmbeddedAws, python: Path, task_root: Path, packaged: Packaged,
                         appspec: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """AWS's sample job event, its artifact a CodeDeploy-style revision, handed to the packaged pipeline_job."""
    job_id, target = str(uuid.uuid4()), f"packaged-{uuid.uuid4().hex[:8]}"
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web:20240912"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=embedded.endpoint)
    bucket, key = emulated.put_artifact(s3, {"imagedefinitions.json": json.dumps([{"name": "web", "imageUri": image}]),
                                             "appspec.yml": appspec}, "codepipeline-artifacts", f"pipeline/{job_id}")
    params = {"target": target, "instances": {"tags": TAGS}, "container": {"name": "web", "ports": ["5000:5000"]}}
    event = pipeline_job_event(job_id=job_id, user_parameters=json.dumps(params), bucket=bucket, key=key)
    ran = run_in_runtime(python, task_root, HANDLER, event, lambda_environment(packaged, embedded.endpoint))
    assert ran["reply"]["result"] in {"Continue", "Fail"}, ran
    return ran, embedded.control.job_results(job_id)


def test_the_packaged_pipeline_job_takes_a_codedeploy_revision_to_its_first_continuation(
        embedded: EmbeddedAws, bare_runtime: Path, task_root: Path, packaged: dict[str, Packaged]) -> None:
    _, results = run_first_invocation(embedded, bare_runtime, task_root, packaged["dev"],
                                      (ROOT / "appspec.yml").read_bytes())
    assert len(results) == 1, results
    (result,) = results
    assert result["type"] == "success", result
    deployment_id = json.loads(result["continuationToken"])["d"]
    commands = boto3.client("ssm", region_name=REGION, endpoint_url=embedded.endpoint).list_commands()["Commands"]
    assert [c["DocumentName"] for c in commands if deployment_id in c["Comment"]] == ["AWS-RunShellScript"]


def test_the_first_invocation_creates_only_the_clients_it_calls(
        embedded: EmbeddedAws, bare_runtime: Path, task_root: Path, packaged: dict[str, Packaged]) -> None:
    """Cold start: one client per service the first invocation calls (no Scheduler client: nothing is retried yet;
    EventBridge: the deployment's start is published), straight from botocore (boto3 and its S3 transfer manager are
    never imported)."""
    ran, results = run_first_invocation(embedded, bare_runtime, task_root, packaged["dev"],
                                        (ROOT / "appspec.yml").read_bytes())
    assert [r["type"] for r in results] == ["success"], results
    assert ran["clients"] == ["codepipeline", "dynamodb", "ec2", "ecr", "events", "s3", "ssm"]
    assert not ran["boto3"] and not ran["s3transfer"]


def test_the_packaged_pipeline_job_reads_the_appspec_it_ships(
        embedded: EmbeddedAws, bare_runtime: Path, task_root: Path, packaged: dict[str, Packaged]) -> None:
    broken = (ROOT / "appspec.yml").read_bytes().replace(b"version: 0.0", b"version: [0.0")
    _, results = run_first_invocation(embedded, bare_runtime, task_root, packaged["dev"], broken)
    assert [r["type"] for r in results] == ["failure"], results
    details = results[0]["failureDetails"]
    assert details["type"] == "ConfigurationError" and "appspec.yml is not valid YAML" in details["message"], details
