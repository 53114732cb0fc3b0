"""The packaged CloudFormation template: valid (cfn-lint, and AWS's own SAM transform), and carrying what berth
needs around its Lambdas (infra/resources.yaml)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.store import table_definition
from infra.policies import FUNCTIONS, function_name, scheduler_role_name
from tests.packaging.conftest import LAMBDA_PYTHON, REGION, ROOT, Packaged, load_template

pytestmark = pytest.mark.slow
ASYNC_FUNCTIONS = {"PipelineJob", "SsmCommandEvents", "CodedeployEvents", "PipelineActionFailed", "RetryDeployment",
                   "InstanceLaunches"}
SCHEDULING_FUNCTIONS = ASYNC_FUNCTIONS | {"APIHandler"}


def _functions(package: Packaged) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in package.resources.items() if v["Type"] == "AWS::Serverless::Function"}


def _sub(value: Any, stage: str) -> str:
    """A `Fn::Sub` of the Stage parameter (and pseudo parameters left as they are), as a plain string."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    assert isinstance(text, str), value
    return text.replace("${Stage}", stage)


def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--regions", REGION, "--", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_passes_on_the_packaged_template(packaged: dict[str, Packaged], stage: str) -> None:
    proc = _cfn_lint(packaged[stage].template_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_is_really_checking(packaged: dict[str, Packaged], tmp_path: Path) -> None:
    broken = copy.deepcopy(packaged["prod"].template)
    broken["Resources"]["BerthTable"]["Properties"]["TableName"] = {"Ref": "NoSuchResource"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    proc = _cfn_lint(path)
    assert proc.returncode != 0 and "NoSuchResource" in proc.stdout


def test_sam_transform_accepts_the_template_and_wires_dead_letters(
        packaged: dict[str, Packaged], sam_translator: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from samtranslator.translator.transform import transform

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    template = copy.deepcopy(packaged["prod"].template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # a local zip until `aws cloudformation package` uploads it
            resource["Properties"]["CodeUri"] = "s3://bucket/deployment.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    transformed = transform(template, {"Stage": "prod"}, NoManagedPolicies())
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed))
    proc = _cfn_lint(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resources = transformed["Resources"]
    rules = {k: v for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"}
    assert len(rules) == 4
    for name, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}, name
            assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400, name
    configs = {v["Properties"]["FunctionName"]["Ref"] for v in resources.values()
               if v["Type"] == "AWS::Lambda::EventInvokeConfig"}
    assert configs == ASYNC_FUNCTIONS


def test_the_lambda_package_is_built_for_the_lambda_runtime(packaged: dict[str, Packaged]) -> None:
    for package in packaged.values():
        runtimes = {f["Properties"]["Runtime"] for f in _functions(package).values()}
        assert runtimes == {f"python{LAMBDA_PYTHON}"}
        with zipfile.ZipFile(package.directory / "deployment.zip") as archive:
            names = archive.namelist()
        assert "app.py" in names and "chalicelib/wiring.py" in names
        assert "chalicelib/instance_scripts/start_container.sh" in names
        native = [n for n in names if n.startswith("pydantic_core/") and n.endswith(".so")]
        assert native and all("x86_64-linux-gnu" in n for n in native), native


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_table_is_the_one_the_store_creates(packaged: dict[str, Packaged], stage: str) -> None:
    table = packaged[stage].resources["BerthTable"]
    assert table["DeletionPolicy"] == "Retain"
    props = table["Properties"]
    expected = table_definition(f"berth-{stage}")
    assert _sub(props["TableName"], stage) == expected["TableName"]
    assert props["BillingMode"] == expected["BillingMode"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert props["KeySchema"] == expected["KeySchema"]
    assert props["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    for function in _functions(packaged[stage]).values():
        assert function["Properties"]["Environment"]["Variables"]["BERTH_TABLE"] == expected["TableName"]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_functions_know_the_scheduler_role_and_the_retry_function(packaged: dict[str, Packaged], stage: str) -> None:
    functions = _functions(packaged[stage])
    retry_name = _sub(functions["RetryDeployment"]["Properties"]["FunctionName"], stage)
    assert retry_name == function_name(stage, "retry_deployment")
    for logical, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        if logical not in SCHEDULING_FUNCTIONS:
            assert "BERTH_SCHEDULER_ROLE_ARN" not in variables, logical
            continue
        assert variables["BERTH_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}, logical
        assert _sub(variables["BERTH_RETRY_FUNCTION_ARN"], stage).endswith(f":function:{retry_name}"), logical


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_scheduler_role_may_only_invoke_the_retry_function(packaged: dict[str, Packaged], stage: str) -> None:
    """It may invoke the retry Lambda and drop an undeliverable schedule into the dead-letter queue: nothing else."""
    role = packaged[stage].resources["SchedulerRole"]["Properties"]
    assert _sub(role["RoleName"], stage) == scheduler_role_name(stage)
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert len(statements) == 2
    invoke, dead_letter = statements
    assert invoke["Effect"] == "Allow" and invoke["Action"] == "lambda:InvokeFunction"
    assert _sub(invoke["Resource"], stage).endswith(f":function:{function_name(stage, 'retry_deployment')}")
    assert dead_letter == {"Effect": "Allow", "Action": "sqs:SendMessage",
                           "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}


@pytest.mark.parametrize("stage", ["dev"])
def test_retry_schedules_name_the_dead_letter_queue(packaged: dict[str, Packaged], stage: str) -> None:
    for logical in ("PipelineJob", "SsmCommandEvents", "RetryDeployment"):
        variables = packaged[stage].resources[logical]["Properties"]["Environment"]["Variables"]
        assert variables["BERTH_SCHEDULE_DEAD_LETTER_ARN"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, logical


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_function_has_a_log_group_with_retention(packaged: dict[str, Packaged], stage: str) -> None:
    resources = packaged[stage].resources
    groups = {_sub(v["Properties"]["LogGroupName"], stage): v["Properties"] for v in resources.values()
              if v["Type"] == "AWS::Logs::LogGroup"}
    names = {_sub(f["Properties"]["FunctionName"], stage) for f in _functions(packaged[stage]).values()}
    assert names == {function_name(stage, f) for f in FUNCTIONS}
    assert set(groups) == {f"/aws/lambda/{name}" for name in names}
    for group in groups.values():
        retention = group["RetentionInDays"]
        days = retention["Fn::If"][1:] if isinstance(retention, dict) else [retention]
        assert days and all(isinstance(d, int) and d > 0 for d in days), retention


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_event_rules_and_async_invocations_have_a_dead_letter_queue(packaged: dict[str, Packaged], stage: str) -> None:
    functions = _functions(packaged[stage])
    queue = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    with_events = {k: f for k, f in functions.items() if f["Properties"].get("Events")}
    assert set(with_events) == {"SsmCommandEvents", "CodedeployEvents", "PipelineActionFailed", "InstanceLaunches"}
    for logical, function in with_events.items():
        for event in function["Properties"]["Events"].values():
            assert event["Type"] == "EventBridgeRule", logical
            assert event["Properties"]["DeadLetterConfig"] == {"Arn": queue}, logical
            assert event["Properties"]["Pattern"], logical          # Chalice's pattern survives the merge
            assert "RetryPolicy" in event["Properties"], logical
    for logical in ASYNC_FUNCTIONS:
        on_failure = functions[logical]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure == {"Type": "SQS", "Destination": queue}, logical
    policy = packaged[stage].resources["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Principal"] for s in policy] == [{"Service": "events.amazonaws.com"}]


def test_alarms_watch_the_metrics_berth_emits(packaged: dict[str, Packaged]) -> None:
    alarms = {v["Properties"]["MetricName"]: v["Properties"] for v in packaged["prod"].resources.values()
              if v["Type"] == "AWS::CloudWatch::Alarm"}
    for metric in ("DeploymentsFailed", "RetriesGivenUp"):
        assert alarms[metric]["Namespace"] == "berth"
        assert alarms[metric]["Dimensions"] == [{"Name": "service", "Value": "berth"},
                                                {"Name": "stage", "Value": {"Ref": "Stage"}}]
        assert alarms[metric]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert alarms["ApproximateNumberOfMessagesVisible"]["Namespace"] == "AWS/SQS"


def test_the_alarmed_metric_names_are_the_ones_the_code_emits() -> None:
    observability = ROOT / "chalicelib" / "observability.py"
    if not observability.exists():
        pytest.skip("chalicelib/observability.py (Powertools metrics) is not in this tree yet")
    assert re.search(r"""NAMESPACE\s*=\s*["']berth["']""", observability.read_text())
    assert re.search(r"""service\s*=\s*["']berth["']""", observability.read_text())
    assert re.search(r"""set_default_dimensions\(stage=""", observability.read_text())
    source = "\n".join(p.read_text() for p in (ROOT / "chalicelib").rglob("*.py"))
    assert '"RetriesGivenUp"' in source, "no code emits RetriesGivenUp; the alarm on it would never fire"
    # DeploymentsFailed may be spelled out or built from the deployment's final status.
    from chalicelib.domain.deployment import DeploymentStatus

    built = (re.search(r'f"Deployments\{[\w.]*status\.value\.capitalize\(\)\}"', source) is not None
             and DeploymentStatus.FAILED.value == "FAILED")
    assert '"DeploymentsFailed"' in source or built, "no code emits DeploymentsFailed"


def test_the_merge_template_stands_on_its_own() -> None:
    template = load_template(ROOT / "infra" / "resources.yaml")
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["dev", "prod"]


def test_terraform_package_builds_offline(terraform_package: Path) -> None:
    document = json.loads((terraform_package / "chalice.tf.json").read_text())
    functions = document["resource"]["aws_lambda_function"]
    assert {f["runtime"] for f in functions.values()} == {f"python{LAMBDA_PYTHON}"}
    assert {f["function_name"] for f in functions.values()} >= {"berth-prod-pipeline_job",
                                                               "berth-prod-retry_deployment"}
    assert (terraform_package / "deployment.zip").exists()
