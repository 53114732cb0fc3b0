"""`make local`: the embedded AWS and berth's REST API under `chalice local`, left running for exploration.

It provisions the `local` stage's table, launches a tagged fleet (SSM sees it as managed instances), pushes two images
to ECR, puts a pipeline artifact in S3 and creates a CodeDeploy application and deployment group, starts the dashboard
(`berth ui`'s server, signing with the embedded AWS's credentials) on a free loopback port, then prints the endpoints,
the dashboard's URL and calls to try, and runs until Ctrl-C, when it stops both servers and the dashboard.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from berth_cli.ui import UiServer

TAGS = {"app": "web", "env": "local", "berth:managed": "true"}
ARTIFACT_BUCKET = "codepipeline-us-east-1-berth-local"


def main() -> int:
    from tools.provision import stage_environment

    os.environ.update(stage_environment("local"))
    import boto3

    from localaws import InstanceOutcome
    from tools.embedded import EmbeddedAws, chalice_local
    from tools.emulated import launch, push_image, put_artifact
    from tools.provision import provision

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedAws() as aws:
        for line in provision("local", boto3.client("dynamodb")):
            print(line)
        fleet = launch(boto3.client("ec2"), 3, TAGS)
        first, _ = push_image(boto3.client("ecr"), "web", "1.0.0", "v1")
        second, _ = push_image(boto3.client("ecr"), "web", "1.1.0", "v2")
        bucket, key = put_artifact(boto3.client("s3"), {"imagedefinitions.json": json.dumps(
            [{"name": "web", "imageUri": second}])}, ARTIFACT_BUCKET, "pipeline/BuildArtif/web-1.1.0")
        codedeploy = boto3.client("codedeploy")
        codedeploy.create_application(applicationName="web", computePlatform="Server")
        codedeploy.create_deployment_group(
            applicationName="web", deploymentGroupName="web-local",
            serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
            ec2TagFilters=[{"Key": "env", "Value": "local", "Type": "KEY_AND_VALUE"}])
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=2))
        with chalice_local("local") as url, dashboard(url) as ui:
            print(f"""
embedded AWS   {aws.endpoint}   (export AWS_ENDPOINT_URL={aws.endpoint} AWS_ACCESS_KEY_ID=berth-local \\
                                         AWS_SECRET_ACCESS_KEY=berth-local AWS_DEFAULT_REGION=us-east-1)
berth REST API {url}
dashboard      {ui.login_url}
               (or run your own: BERTH_API_URL={url} berth ui --port 8001)
fleet          {', '.join(fleet)} tagged {TAGS} (SSM-managed)
images         {first}  {second}
artifact       s3://{bucket}/{key} (imagedefinitions.json naming {second})
CodeDeploy     application web, deployment group web-local (instances tagged env=local)

Try:
  curl -s -X PUT {url}/targets/web-local -H 'Content-Type: application/json' \\
       -d '{{"target": "web-local", "instances": {{"tags": {{"app": "web", "env": "local"}}}}, \\
            "container": {{"name": "web", "ports": ["5000:5000"]}}}}'
  export BERTH_API_URL={url}
  berth deploy web-local --image {first} --wait
  berth deploy web-local --image {second} --wait
  berth rollback web-local --wait
  berth history web-local
  curl -s {url}/openapi.json | head -c 400

Ctrl-C stops both servers.""", flush=True)
            try:
                while not stop.wait(1):
                    pass
            except KeyboardInterrupt:
                pass
    return 0


@contextmanager
def dashboard(url: str) -> Iterator[UiServer]:
    """`berth ui`'s server for the local API, in a thread: the embedded AWS's credentials sign its calls."""
    import botocore.session

    from berth_cli.client import Api
    from berth_cli.ui import UiServer

    api = Api(url, "us-east-1", botocore.session.Session().get_credentials())
    server = UiServer(api, port=0)
    thread = threading.Thread(target=server.serve_forever, name="berth-ui", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
