"""berth's main job, end to end, on an embedded AWS: no account, no network.

    make demo

The embedded AWS is a localaws server (moto plus berth's extensions) in a child process. berth's Lambdas run in
this process through chalice's test client, exactly as Lambda would invoke them, against that endpoint; the REST API
runs under `chalice local`. Local stand-ins play the AWS services' own parts: CodePipeline (tools/local_pipeline.py
hands over job events and follows continuation tokens), EventBridge (tools/local_events.py emits the events AWS
would) and EventBridge Scheduler (tools/local_scheduler.py fires due schedules).

1. A pipeline run deploys an image from imagedefinitions.json to a tagged fleet through one SSM command.
2. A transient failure (one instance's pull fails): the SSM event arrives, berth schedules a retry, the schedule
   fires, and the deployment succeeds on its second attempt while the pipeline job stays open.
3. A CodeDeploy deployment fails with `docker: command not found`: berth installs Docker on that instance through
   SSM, then recreates the deployment with the same revision.
4. An engineer redeploys a new image and rolls back to the previous one with the `berth` CLI, through the REST API.
5. A canary whose CloudWatch alarm fires during its bake is rolled back automatically (tools/demo_canary.py).
6. A new instance joins and receives the target's current revision, once SSM sees it Online (tools/demo_join.py).
Emulated: AWS itself and what instances report (localaws outcomes). Real: berth's code, its records, the SSM shell.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STAGE = "local"
TAGS = {"app": "web", "env": "demo", "berth:managed": "true"}
DB_LOGIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:web/db-AbCdEf:password::"
SPEC: dict[str, Any] = {
    "target": "web-demo",
    "instances": {"tags": TAGS},
    # How a real service runs: its command, a data volume, memory and CPU limits, a log driver with rotation, and a
    # secret by reference (the instance reads it with its own instance profile; berth sees only the ARN).
    "container": {"name": "web", "ports": ["5000:5000"], "env": {"APP_MODE": "production"},
                  "secrets": {"DB_PASSWORD": DB_LOGIN_ARN},
                  "command": ["gunicorn", "--bind", "0.0.0.0:5000", "--workers", "2", "app:wsgi"],
                  "volumes": ["/srv/web/uploads:/app/uploads", "/etc/localtime:/etc/localtime:ro"],
                  "memory": "512m", "memory_reservation": "256m", "cpus": 0.5,
                  "log": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
                  "init": True},
    "health_check": {"path": "/health", "port": 5000, "timeout_seconds": 60},
    "rollout": {"max_concurrency": "50%", "max_errors": "0"},
    "retry": {"max_attempts": 3, "base_seconds": 30, "cap_seconds": 900},
}
ARTIFACT_BUCKET = "codepipeline-us-east-1-berth-demo"


@dataclass
class Step:
    name: str
    expected: str
    got: str = "(did not run)"

    @property
    def ok(self) -> bool:
        return self.expected == self.got


def say(text: str = "") -> None:
    print(text, flush=True)


def main() -> int:
    from tools.provision import stage_environment

    # The demo reads records outside Lambda invocations too: give this process the stage's settings, whatever the
    # calling shell had.
    os.environ.update(stage_environment(STAGE))
    # The timeline is the demo's output: berth's JSON logs and EMF metrics (what CloudWatch would get) stay quiet
    # unless asked for with BERTH_DEMO_VERBOSE=1.
    if not os.environ.get("BERTH_DEMO_VERBOSE"):
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from tools.embedded import EmbeddedAws

    steps = [Step("pipeline run deploys to the fleet", "success on attempt 1"),
             Step("transient failure retried", "success on attempt 2"),
             Step("docker missing remediated, redeployed", "remediated and retried"),
             Step("CLI redeploy and rollback", "rolled back to the previous digest"),
             Step("canary alarm during the bake", "canary rolled back to the previous digest on 1 instance"),
             Step("a new instance joins", "the new instance joined at the current digest")]
    with EmbeddedAws() as aws:
        say(f"== embedded AWS at {aws.endpoint}")
        try:
            Demo(aws).run(steps)
        except Exception as exc:  # the summary still prints: which steps got how far
            say(f"!! the demo stopped: {type(exc).__name__}: {exc}")
    say("\n== summary")
    width = max(len(step.name) for step in steps)
    for step in steps:
        say(f"   {'PASS' if step.ok else 'FAIL'}  {step.name:<{width}}  expected {step.expected}, got {step.got}")
    return 0 if all(step.ok for step in steps) else 1


class Demo:
    def __init__(self, aws: Any) -> None:
        import boto3
        from chalice.test import Client

        from app import app

        self.aws = aws
        self.control = aws.control
        self.client = Client(app, stage_name=STAGE)
        self.boto = {name: boto3.client(name) for name in ("ec2", "ecr", "s3", "ssm", "codedeploy", "scheduler",
                                                           "dynamodb", "cloudwatch")}
        self.delivered: set[str] = set()

    def run(self, steps: list[Step]) -> None:
        from localaws import InstanceOutcome
        from tools.emulated import launch, push_image
        from tools.provision import provision

        say("   provisioning berth's table, a fleet of 3 instances, an ECR repository with two images")
        for line in provision(STAGE, self.boto["dynamodb"]):
            say(f"   {line}")
        self.fleet = launch(self.boto["ec2"], 3, TAGS)
        self.v1, self.v1_digest = push_image(self.boto["ecr"], "web", "20261126", "v1")
        self.v2, self.v2_digest = push_image(self.boto["ecr"], "web", "20261127", "v2")
        self.v3, self.v3_digest = push_image(self.boto["ecr"], "web", "20261128", "v3")
        say(f"   fleet {', '.join(self.fleet)}; images web:20261126, :20261127, :20261128 in {self.v1.split('/')[0]}")
        self.control.set_default_outcome(InstanceOutcome(polls_before_done=1, stdout="berth-step: health\n"))

        say("\n== 1. pipeline run: CodePipeline invokes pipeline_job, then follows its continuation tokens")
        first = self.pipeline_run(self.v1)
        steps[0].got = first
        sent = "\n".join(self.boto["ssm"].list_commands()["Commands"][-1]["Parameters"]["commands"])
        by_reference = f"--secret DB_PASSWORD={DB_LOGIN_ARN}" in sent
        say(f"   the command names DB_PASSWORD by its ARN alone: {by_reference}")

        say("\n== 2. transient failure: one instance cannot reach the registry on the first attempt")
        self.control.set_outcome(self.fleet[1], InstanceOutcome(
            status="Failed", response_code=21, stdout="berth-step: docker\nberth-step: pull\n",
            stderr="Error response from daemon: Get https://registry/v2/: net/http: TLS handshake timeout"))
        steps[1].got = self.pipeline_run(self.v2, recover=lambda: self.control.set_outcome(
            self.fleet[1], InstanceOutcome(polls_before_done=1)))

        say("\n== 3. CodeDeploy: the classic `docker: command not found`")
        steps[2].got = self.codedeploy_docker_missing()

        say("\n== 4. an engineer redeploys and rolls back with the berth CLI (REST API under chalice local)")
        steps[3].got = self.cli_redeploy_and_rollback()

        say("\n== 5. a canary: its CloudWatch alarm fires during the bake, berth rolls it back on its own")
        from tools.demo_canary import canary_rolled_back

        steps[4].got = canary_rolled_back(self, SPEC, self.v3, self.v2_digest)

        say("\n== 6. a new instance starts: it joins the target at the current revision")
        from tools.demo_join import instance_joined

        steps[5].got = instance_joined(self, TAGS, SPEC["target"])

    # ---------------------------------------------------------------------------------------------------------
    def boto_client(self, name: str) -> Any:
        return self.boto[name]

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.client.lambda_.invoke(function, event).payload

    def deliver_events(self) -> None:
        """What EventBridge would deliver now: SSM command status changes, to ssm_command_events."""
        from tools.local_events import ssm_command_events

        for event in ssm_command_events(self.boto["ssm"], self.delivered):
            answer = self.invoke("ssm_command_events", event)
            say(f"   ~> EventBridge: command {event['detail']['command-id'][:8]} {event['detail']['status']}: "
                f"{answer['detail']}")

    def fire_schedules(self) -> list[str]:
        from tools.local_scheduler import fire_all

        def run(payload: dict[str, Any]) -> None:
            answer = self.invoke("retry_deployment", payload)
            say(f"   ~> Scheduler fired: {answer['action']}: {answer['detail']}")

        fired: list[str] = []
        for _ in range(10):       # a retry may schedule a follow-up (waiting for remediation); fire those too
            batch = fire_all(self.boto["scheduler"], run)
            if not batch:
                break
            fired += batch
        return fired

    def pipeline_run(self, image: str, recover: Callable[[], None] | None = None) -> str:
        from tools.emulated import put_artifact
        from tools.local_pipeline import Reply, run_job

        bucket, key = put_artifact(self.boto["s3"], {"imagedefinitions.json": json.dumps(
            [{"name": "web", "imageUri": image}])}, ARTIFACT_BUCKET, f"pipeline/BuildArtif/{image[-8:]}")

        def show(reply: Reply) -> None:
            say(f"   <- {reply.kind:<8} {reply.text[:200]}")

        def between_rounds() -> None:
            self.deliver_events()
            if recover is not None and self.pending_schedules():
                say("   .. the registry answers again")
                recover()
                self.fire_schedules()

        replies = run_job(lambda event: self.invoke("pipeline_job", event), self.control.job_results,
                          json.dumps(SPEC), bucket, key, show, between_rounds=between_rounds)
        last = replies[-1]
        if last.kind != "success":
            return last.kind
        deployment = self.deployment(last.result["outputVariables"]["deployment_id"])
        attempt = deployment.attempts[-1]
        for result in sorted(attempt.instances.values(), key=lambda r: r.instance_id):
            say(f"     {result.instance_id}  {result.status:<8} exit {result.response_code}")
        if not attempt.instances and attempt.tally:  # a clean success: SSM's counts said it, no result was read
            say(f"     {', '.join(attempt.expected_instances)}: all {attempt.tally.succeeded} Success "
                "(SSM Success/Success over every expected instance)")
        return f"success on attempt {len(deployment.attempts)}"

    def pending_schedules(self) -> bool:
        from tools.local_scheduler import pending

        return bool(pending(self.boto["scheduler"]))

    def deployment(self, deployment_id: str) -> Any:
        from chalicelib import wiring

        with self.client:
            return wiring.store().get_deployment(deployment_id)

    def codedeploy_docker_missing(self) -> str:
        from chalicelib import wiring
        from chalicelib.domain.spec import TargetSpec
        from tools.local_events import codedeploy_state_event

        codedeploy = self.boto["codedeploy"]
        codedeploy.create_application(applicationName="web", computePlatform="Server")
        codedeploy.create_deployment_group(
            applicationName="web", deploymentGroupName="web-demo", serviceRoleArn=
            "arn:aws:iam::123456789012:role/codedeploy", ec2TagFilters=[
                {"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
        with self.client:
            wiring.store().put_target(TargetSpec.model_validate(
                {**SPEC, "codedeploy": {"application": "web", "deployment_group": "web-demo"}}), "demo")
        revision = {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "web.zip", "bundleType": "zip"}}
        failed = codedeploy.create_deployment(applicationName="web", deploymentGroupName="web-demo",
                                              revision=revision)["deploymentId"]
        say(f"   CodeDeploy deployment {failed} fails on {self.fleet[0]} in ApplicationStart")
        self.control.set_deployment_outcome(failed, "Failed", instances={self.fleet[0]: {
            "status": "Failed", "lifecycle_event": "ApplicationStart", "script_name": "scripts/start_container.sh",
            "error_code": "ScriptFailed", "message": "Script at specified location: scripts/start_container.sh run "
            "as user root failed with exit code 127", "log_tail": "scripts/start_container.sh: line 9: docker: "
            "command not found"}})
        for state in ("START", "FAILURE"):
            answer = self.invoke("codedeploy_events", codedeploy_state_event(failed, "web", "web-demo", state))
            say(f"   ~> EventBridge: deployment {state}: {answer['action']} {answer['detail'][:160]}")
        fired = self.fire_schedules()
        with self.client:
            record = wiring.store().get_codedeploy(failed)
        if not fired or record is None or not record.retried_as or not record.remediation_commands:
            return "no remediation or no retry"
        retried = record.retried_as
        self.control.set_deployment_outcome(retried, "Succeeded")
        answer = self.invoke("codedeploy_events", codedeploy_state_event(retried, "web", "web-demo", "SUCCESS"))
        say(f"   ~> EventBridge: deployment {retried} SUCCESS: {answer['action']}")
        return "remediated and retried"

    def cli_redeploy_and_rollback(self) -> str:
        from tools.embedded import chalice_local

        with chalice_local(STAGE) as url:
            say(f"   chalice local serves the API at {url}")
            self.control.set_default_outcome(self.control_outcome())
            deploy = berth_cli(url, "deploy", "web-demo", "--image", self.v3, "--reason", "demo redeploy", "--wait",
                               "--interval", "0.2")
            rollback = berth_cli(url, "rollback", "web-demo", "--reason", "demo rollback", "--wait",
                                 "--interval", "0.2")
            status = berth_cli(url, "status", "web-demo", "--json")
            berth_cli(url, "history", "web-demo", "--limit", "4")
        if deploy != 0 or rollback != 0 or status != 0:
            return f"CLI exit codes {deploy}/{rollback}/{status}"
        from chalicelib import wiring

        with self.client:
            target = wiring.store().get_target("web-demo")
        digest = target.current_revision.digest if target and target.current_revision else None
        return "rolled back to the previous digest" if digest == self.v2_digest else f"digest {digest}"

    def control_outcome(self) -> Any:
        from localaws import InstanceOutcome

        return InstanceOutcome(polls_before_done=1)


def berth_cli(url: str, *args: str) -> int:
    import subprocess

    command = [sys.executable, "-c", "import sys; from berth_cli.main import main; sys.exit(main())", *args,
               "--url", url, "--stage", STAGE]
    say(f"   $ berth {' '.join(args)}")
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    for line in done.stdout.strip().splitlines()[-12:]:
        say(f"     {line[:200]}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
