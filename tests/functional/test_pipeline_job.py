"""The pipeline action end to end: AWS's sample job event, moto for AWS, localaws for the calls moto lacks."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from chalice.test import Client

import localaws
from app import app
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.support import TAGS, invoke, jid, results, spec
from tools import local_pipeline


def run_job(world: World, job_id: str, params: dict[str, Any], files: dict[str, str] | None = None,
            max_rounds: int = 10) -> list[dict[str, Any]]:
    """Hand the job to berth as CodePipeline would (tools/local_pipeline.py), following continuation tokens."""
    bucket, key = world.put_artifact(files or {})
    replies = local_pipeline.run_job(invoke, results, json.dumps(params), bucket, key, max_rounds=max_rounds,
                                     first_job_id=job_id)
    return [reply.result for reply in replies]


def sent_commands(world: World) -> list[dict[str, Any]]:
    return list(world.client("ssm").list_commands()["Commands"])


def test_deploys_image_from_imagedefinitions_to_tagged_fleet(aws: World) -> None:
    instances = aws.launch(3, TAGS)
    aws.launch(2, {"app": "other"})
    digest = aws.push_image("web", "20240912")
    image = aws.image_uri("web", "20240912")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1, stdout="berth-step: health\nberth-result: ok"))

    replies = run_job(aws, jid("job-1"), spec(), {"imagedefinitions.json": json.dumps(
        [{"name": "sidecar", "imageUri": "public.ecr.aws/x/y:1"}, {"name": "web", "imageUri": image}])})

    assert [r["type"] for r in replies] == ["success"] * len(replies)
    assert "continuationToken" in replies[0] and len(replies[0]["continuationToken"]) <= 2048
    final = replies[-1]
    assert "continuationToken" not in final
    assert final["outputVariables"]["image_digest"] == digest
    deployment_id = final["outputVariables"]["deployment_id"]
    assert final["executionDetails"]["externalExecutionId"] == deployment_id

    commands = sent_commands(aws)
    assert len(commands) == 1
    command = commands[0]
    assert command["DocumentName"] == "AWS-RunShellScript"
    assert {t["Key"]: t["Values"] for t in command["Targets"]} == {"tag:app": ["web"], "tag:env": ["prod"]}
    assert command["MaxConcurrency"] == "25%" and command["MaxErrors"] == "0"
    assert deployment_id in command["Comment"]
    script = "\n".join(command["Parameters"]["commands"])
    assert f"web@{digest}" in script
    assert "--ecr-login us-east-1" in script

    from chalicelib.wiring import store
    with Client(app, stage_name="test"):
        record = store().get_deployment(deployment_id)
        target = store().get_target("web-prod")
    assert record.status.value == "SUCCEEDED"
    assert sorted(record.attempts[0].expected_instances) == instances
    assert record.attempts[0].tally is not None and record.attempts[0].tally.succeeded == len(instances)
    assert record.revision.digest == digest and record.job_id == jid("job-1")
    assert target is not None and target.current_revision == record.revision


def test_failed_instance_fails_the_job_with_step_and_output(aws: World) -> None:
    instances = aws.launch(2, TAGS)
    aws.push_image("web", "v2")
    localaws.set_outcome(instances[1], InstanceOutcome(
        status="Failed", response_code=21, stdout="berth-step: pull\n",
        stderr="Error response from daemon: manifest unknown"))

    replies = run_job(aws, jid("job-f"), spec(image=aws.image_uri("web", "v2"), retry={"max_attempts": 1}))

    failure = replies[-1]
    assert failure["type"] == "failure"
    message = failure["failureDetails"]["message"]
    assert instances[1] in message and instances[0] not in message.split("failed.")[1]
    assert "step pull" in message and "exit 21" in message and "manifest unknown" in message
    assert len(message) <= 5000


SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
# What start_container.sh prints when the instance profile may not read a secret (its secret_unreadable).
SECRET_UNREADABLE_STDERR = (
    "error: An error occurred (AccessDeniedException) when calling the GetSecretValue operation: User: "
    "arn:aws:sts::123456789012:assumed-role/web-instance/i-0abc is not authorized to perform: "
    "secretsmanager:GetSecretValue on resource: prod/db-AbCdEf because no identity-based policy allows it. The "
    "instance profile needs secretsmanager:GetSecretValue or ssm:GetParameter on it (and kms:Decrypt on a customer "
    f"managed key). Container web was not touched. Could not read {SECRET_ARN} for the secret DB_PASSWORD\n")


def test_an_unreadable_secret_fails_the_job_at_once_naming_the_secret(aws: World) -> None:
    instances = aws.launch(2, TAGS)
    aws.push_image("web", "v4")
    localaws.set_outcome(instances[0], InstanceOutcome(
        status="Failed", response_code=22, stdout="berth-step: pull\nberth-step: secrets\n",
        stderr=SECRET_UNREADABLE_STDERR))
    container = {"name": "web", "ports": ["5000:5000"], "secrets": {"DB_PASSWORD": SECRET_ARN}}

    replies = run_job(aws, jid("job-secret"), spec(image=aws.image_uri("web", "v4"), container=container))

    failure = replies[-1]
    assert failure["type"] == "failure"
    message = failure["failureDetails"]["message"]
    assert "step secrets, exit 22" in message and "a secret could not be read" in message
    assert "(permanent)" in message and f"Could not read {SECRET_ARN} for the secret DB_PASSWORD" in message
    commands = sent_commands(aws)
    assert len(commands) == 1, "a permanent failure is never retried"
    assert f"--secret DB_PASSWORD={SECRET_ARN}" in "\n".join(commands[0]["Parameters"]["commands"])


def test_instance_that_never_ran_counts_as_failed(aws: World) -> None:
    instances = aws.launch(2, TAGS)
    aws.push_image("web", "v3")
    localaws.set_outcome(instances[0], InstanceOutcome(skip=True))

    replies = run_job(aws, jid("job-skip"), spec(image=aws.image_uri("web", "v3"), retry={"max_attempts": 1}))

    assert replies[-1]["type"] == "failure"
    assert f"{instances[0]} never ran the command" in replies[-1]["failureDetails"]["message"]


@pytest.mark.parametrize("params, expected", [
    ("not json", "UserParameters are not valid JSON"),
    (json.dumps(["web"]), "must be a JSON object"),
    (json.dumps({"target": "unknown-target"}), "target 'unknown-target' is not registered"),
    (json.dumps({**spec(), "max_concurency": 2}), "max_concurency: unknown key"),
    (json.dumps(spec(image="web:latest")), "mutable tag"),
    (json.dumps(spec(image="Web;rm -rf /")), "image"),
    (json.dumps(spec(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/missing:1")), "is not in ECR"),
    (json.dumps(spec(container={"name": "web", "env": {"BAD-NAME": "x"}})), "container.env.BAD-NAME"),
    (json.dumps(spec(instances={"ids": ["i-123"]})), "instances.ids.0"),
    (json.dumps(spec(instances={"ids": ["mi-0123456789abcdef0"]})),
     "instances.ids.0: 'mi-0123456789abcdef0' is a hybrid managed node: berth deploys to EC2 instance ids (i-...)"),
    (json.dumps(spec(container={"name": "web", "env": {f"V{n}": "x" * 4096 for n in range(128)}})),
     "container.env: env is 525459 bytes as JSON, at most 49152"),
    (json.dumps(spec(container={"name": "w"})), "container.name"),
    (json.dumps(spec(container={"name": "web", "ports": ["080:80", "80:80"]})), "leading zeros"),
    (json.dumps(spec(health_check={"port": 80, "timeout_seconds": 600}, rollout={"timeout_seconds": 300})),
     "health_check.timeout_seconds (600) must be shorter than rollout.timeout_seconds (300)"),
])
def test_bad_input_gets_a_clear_failure_and_no_command(aws: World, params: str, expected: str) -> None:
    aws.launch(1, TAGS)
    bucket, key = aws.put_artifact({})
    invoke(pipeline_job_event(job_id=jid("job-bad"), user_parameters=params, bucket=bucket, key=key))

    reply = results(jid("job-bad"))
    assert len(reply) == 1 and reply[0]["type"] == "failure"
    assert expected in reply[0]["failureDetails"]["message"]
    assert sent_commands(aws) == []


def test_missing_user_parameters_and_missing_artifact(aws: World) -> None:
    invoke(pipeline_job_event("codepipeline_job_no_user_parameters", job_id=jid("job-noparams")))
    assert "UserParameters are missing" in results(jid("job-noparams"))[0]["failureDetails"]["message"]

    invoke(pipeline_job_event(job_id=jid("job-noartifact"), user_parameters=json.dumps(spec()),
                              bucket="codepipeline-artifacts", key="nothing-here"))
    reply = results(jid("job-noartifact"))
    assert reply[0]["type"] == "failure"
    assert "cannot read input artifact 'ArtifactName'" in reply[0]["failureDetails"]["message"]
    assert reply[0]["failureDetails"]["type"] == "RevisionUnavailable"
    assert sent_commands(aws) == []


def test_bad_appspec_in_artifact_is_refused(aws: World) -> None:
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1"), "appspec.yml": "version: 0.0\nos: [\n"})
    invoke(pipeline_job_event(job_id=jid("job-appspec"), user_parameters=json.dumps(spec()), bucket=bucket, key=key))
    assert "appspec.yml is not valid YAML" in results(jid("job-appspec"))[0]["failureDetails"]["message"]
    assert sent_commands(aws) == []


def test_duplicate_delivery_sends_no_second_command(aws: World) -> None:
    aws.launch(2, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=5))
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    event = pipeline_job_event(job_id=jid("job-dup"), user_parameters=json.dumps(spec()), bucket=bucket, key=key)

    for _ in range(3):
        invoke(event)

    assert len(sent_commands(aws)) == 1
    assert len(results(jid("job-dup"))) == 1


def test_event_without_job_id_reports_nothing_and_does_not_crash(aws: World) -> None:
    invoke({"hello": "world"})
    assert sent_commands(aws) == []


def test_unexpected_error_still_ends_in_one_failure(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services import pipeline_job

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline_job, "parse_pipeline_parameters", explode)
    invoke(pipeline_job_event(job_id=jid("job-boom"), user_parameters="{}", no_artifacts=True))
    reply = results(jid("job-boom"))
    assert len(reply) == 1 and reply[0]["failureDetails"]["type"] == "SystemUnavailable"


def test_artifact_credentials_never_reach_the_logs(aws: World, caplog: pytest.LogCaptureFixture,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")
    run_job(aws, jid("job-logs"), spec(), {"image.txt": aws.image_uri("web", "v1")})
    invoke(pipeline_job_event(job_id=jid("job-logs-bad"), user_parameters="{bad"))
    credentials = pipeline_job_event()["CodePipeline.job"]["data"]["artifactCredentials"]
    printed = capsys.readouterr()
    logged = caplog.text + printed.out + printed.err
    assert '"job_id"' in logged and jid("job-logs") in logged       # the JSON logs were captured ...
    for secret in credentials.values():                              # ... and carry none of the credentials
        assert secret not in logged
    assert "sessionToken" not in logged


def test_each_invocation_emits_emf_metrics(aws: World, capsys: pytest.CaptureFixture[str]) -> None:
    aws.launch(1, TAGS)
    aws.push_image("web", "v1")
    run_job(aws, jid("job-metrics"), spec(), {"image.txt": aws.image_uri("web", "v1")})
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for blob in metrics for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"DeploymentsStarted", "DeploymentsSucceeded", "DeploymentDurationSeconds"} <= names
    assert all(blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "berth" for blob in metrics)


def test_concurrent_duplicate_deliveries_all_report_the_running_deployment(aws: World,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Four copies of one job at once, ten times over: every copy answers with the one deployment (none says there
    is no such deployment), and one command is sent per job."""
    import threading

    from chalicelib.adapters.codepipeline import JobReporter

    aws.launch(2, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=50))
    decided: list[tuple[str, Any]] = []
    report = JobReporter.report

    def seen(self: JobReporter, job_id: str, result: Any) -> bool:
        decided.append((job_id, result))          # every copy's answer, whether or not CodePipeline took it
        return report(self, job_id, result)

    monkeypatch.setattr(JobReporter, "report", seen)
    invoke({"hello": "world"})       # loads the logger once: a Lambda process serves one invocation at a time
    rounds, copies = 10, 4
    for round_number in range(rounds):
        event = pipeline_job_event(job_id=jid(f"job-concurrent-{round_number}"), no_artifacts=True,
                                   user_parameters=json.dumps(spec(target=f"web-{round_number}",
                                                                   image=aws.image_uri("web", "v1"))))
        barrier = threading.Barrier(copies)
        errors: list[BaseException] = []

        def deliver_copy(event: dict[str, Any] = event, barrier: threading.Barrier = barrier,
                         errors: list[BaseException] = errors) -> None:
            barrier.wait()
            try:
                invoke(event)
            except BaseException as exc:      # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=deliver_copy) for _ in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        answers = [result for job_id, result in decided if job_id == jid(f"job-concurrent-{round_number}")]
        assert len(answers) == copies
        assert all(type(answer).__name__ == "Continue" for answer in answers), answers
        assert len({answer.external_id for answer in answers}) == 1, answers
        accepted = results(jid(f"job-concurrent-{round_number}"))
        assert len(accepted) == 1 and accepted[0]["type"] == "success"
    assert len(sent_commands(aws)) == rounds


def test_a_target_that_allows_mutable_tags_lets_the_instances_run_them(aws: World) -> None:
    aws.launch(1, TAGS)
    localaws.set_default_outcome(InstanceOutcome(stdout="berth-result: ok"))

    replies = run_job(aws, jid("job-mutable"), spec(image="nginx:latest", allow_mutable_tags=True))

    assert replies[-1]["type"] == "success", replies[-1]
    start_line = sent_commands(aws)[0]["Parameters"]["commands"][-1]
    assert start_line.endswith(" --allow-mutable-tags") and "--image nginx:latest" in start_line
