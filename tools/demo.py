"""berth's main job, end to end, on an embedded AWS (moto plus localaws): no account, no network.

    make demo

1. A pipeline run: CodePipeline's job event for an image built into `imagedefinitions.json`; berth validates it,
   pins the ECR digest, sends one SSM command to the tagged fleet and is followed through continuation tokens.
2. A bad revision: UserParameters with a misspelt key are refused with a message, and no command is sent.
3. A failing instance: one instance cannot pull; the job fails with the instance, the step and its output.
Emulated: AWS itself (moto) and what the instances report back to SSM (localaws outcomes). Real: berth's Lambda
code, its DynamoDB records, and the shell each instance would run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TAGS = {"app": "web", "env": "demo", "berth:managed": "true"}
SPEC: dict[str, Any] = {
    "target": "web-demo",
    "instances": {"tags": TAGS},
    "container": {"name": "web", "ports": ["5000:5000"], "env": {"APP_MODE": "production"}},
    "health_check": {"path": "/health", "port": 5000, "timeout_seconds": 60},
    "rollout": {"max_concurrency": "50%", "max_errors": "0"},
}


ARTIFACT_BUCKET = "codepipeline-us-east-1-berth-demo"


def definitions(image: str) -> dict[str, str | bytes]:
    return {"imagedefinitions.json": json.dumps([{"name": "web", "imageUri": image}])}


@dataclass
class Step:
    name: str
    expected: str
    got: str = ""

    @property
    def ok(self) -> bool:
        return self.expected == self.got


def say(text: str = "") -> None:
    print(text, flush=True)


def main() -> int:
    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1", "BERTH_TABLE": "berth-dev"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    import localaws
    from app import app
    from chalicelib import wiring
    from tools.emulated import launch, push_image, put_artifact
    from tools.local_pipeline import Reply, run_job
    from tools.provision import provision

    localaws.install()
    steps: list[Step] = []
    with mock_aws(), Client(app, stage_name="dev") as client:
        wiring.reset_clients()
        say("== embedded AWS: provisioning berth's table, a fleet, an ECR image and a pipeline artifact")
        for line in provision("dev", boto3.client("dynamodb")):
            say(f"   {line}")
        fleet = launch(boto3.client("ec2"), 3, TAGS)
        say(f"   3 instances tagged {TAGS}: {', '.join(fleet)}")
        image, digest = push_image(boto3.client("ecr"), "web", "20261126")
        say(f"   ECR image {image} -> {digest[:19]}...")
        bucket, key = put_artifact(boto3.client("s3"), definitions(image), ARTIFACT_BUCKET,
                                   "pipeline/BuildArtif/abc123")
        say(f"   artifact s3://{bucket}/{key} holds imagedefinitions.json")

        def invoke(event: dict[str, Any]) -> None:
            client.lambda_.invoke("pipeline_job", event)

        def show(reply: Reply) -> None:
            say(f"   <- {reply.kind:<8} {reply.text[:300]}")

        localaws.set_default_outcome(localaws.InstanceOutcome(
            polls_before_done=1, stdout=f"berth-step: health\nberth-digest: web@{digest}\nberth-result: ok\n"))
        say("\n== 1. pipeline run: CodePipeline invokes pipeline_job, then follows its continuation tokens")
        replies = run_job(invoke, localaws.job_results, json.dumps(SPEC), bucket, key, show)
        steps.append(Step("pipeline run deploys to 3 instances", "success", replies[-1].kind))
        _show_deployment(replies[-1], say)

        say("\n== 2. bad revision: a misspelt key in UserParameters")
        bad = {**SPEC, "rollout": {"max_concurency": "50%"}}
        before = len(boto3.client("ssm").list_commands()["Commands"])
        replies = run_job(invoke, localaws.job_results, json.dumps(bad), bucket, key, show)
        sent = len(boto3.client("ssm").list_commands()["Commands"]) - before
        steps.append(Step("bad revision refused, no command sent", "failure, 0 commands",
                          f"{replies[-1].kind}, {sent} commands"))

        say("\n== 3. one instance cannot pull the image")
        localaws.set_outcome(fleet[1], localaws.InstanceOutcome(
            status="Failed", response_code=21, stdout="berth-step: docker\nberth-step: pull\n",
            stderr="Error response from daemon: pull access denied"))
        failing_image, _ = push_image(boto3.client("ecr"), "web", "20261127")
        bucket, key = put_artifact(boto3.client("s3"), definitions(failing_image), ARTIFACT_BUCKET,
                                   "pipeline/BuildArtif/def456")
        replies = run_job(invoke, localaws.job_results, json.dumps(SPEC), bucket, key, show)
        named = replies[-1].kind == "failure" and fleet[1] in replies[-1].text and "step pull" in replies[-1].text
        steps.append(Step("failed instance named with its step", "failure naming the instance",
                          "failure naming the instance" if named else replies[-1].kind))

    say("\n== summary")
    width = max(len(step.name) for step in steps)
    for step in steps:
        say(f"   {'PASS' if step.ok else 'FAIL'}  {step.name:<{width}}  expected {step.expected}, got {step.got}")
    return 0 if all(step.ok for step in steps) else 1


def _show_deployment(reply: Any, out: Callable[[str], None]) -> None:
    from chalicelib import wiring

    variables = reply.result.get("outputVariables", {})
    deployment = wiring.store().get_deployment(variables["deployment_id"])
    out(f"   deployment {deployment.deployment_id}: {deployment.status.value}, {deployment.revision.pinned}")
    for result in deployment.attempts[-1].instances.values():
        out(f"     {result.instance_id}  {result.status:<8} exit {result.response_code}")


if __name__ == "__main__":
    sys.exit(main())
