"""`make local`: the embedded AWS and berth's REST API under `chalice local`, left running for exploration.

It provisions the `local` stage, launches a tagged fleet, pushes two images and registers the target `web-local`,
then prints the endpoints and calls to try, and runs until Ctrl-C, when it stops both servers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

TAGS = {"app": "web", "env": "local", "berth:managed": "true"}


def main() -> int:
    from tools.provision import stage_environment

    os.environ.update(stage_environment("local"))
    import boto3

    from localaws import InstanceOutcome
    from tools.embedded import EmbeddedAws, chalice_local
    from tools.emulated import launch, push_image
    from tools.provision import provision

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedAws() as aws:
        for line in provision("local", boto3.client("dynamodb")):
            print(line)
        fleet = launch(boto3.client("ec2"), 3, TAGS)
        first, _ = push_image(boto3.client("ecr"), "web", "1.0.0", "v1")
        second, _ = push_image(boto3.client("ecr"), "web", "1.1.0", "v2")
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=2))
        with chalice_local("local") as url:
            print(f"""
embedded AWS   {aws.endpoint}   (export AWS_ENDPOINT_URL={aws.endpoint} AWS_ACCESS_KEY_ID=berth-local \\
                                         AWS_SECRET_ACCESS_KEY=berth-local AWS_DEFAULT_REGION=us-east-1)
berth REST API {url}
fleet          {', '.join(fleet)} tagged {TAGS}
images         {first}  {second}

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


if __name__ == "__main__":
    sys.exit(main())
