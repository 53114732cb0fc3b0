"""The README's first command runs in the suite: the demo must end with every step as it should be, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_every_step_passes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-m", "tools.demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("== summary", 1)[1]
    assert summary.count("PASS") == 6 and "FAIL" not in summary
    assert "the new instance joined at the current digest" in summary
    assert "canary rolled back to the previous digest on 1 instance" in summary
    assert "success on attempt 2" in summary and "remediated and retried" in summary
    assert "wJalrXUtnFEMI" not in done.stdout + done.stderr
    assert "the command names DB_PASSWORD by its ARN alone: True" in done.stdout


def test_embedded_aws_starts_answers_and_leaves_no_process_behind() -> None:
    import socket
    from urllib.parse import urlparse

    import boto3

    from tools.embedded import EmbeddedAws

    with EmbeddedAws() as aws:
        assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint
        assert boto3.session.Session().client("ssm", region_name="us-east-1").list_commands()["Commands"] == []
        process = aws._process
        port = urlparse(aws.endpoint).port
    assert process is not None and process.poll() is not None
    assert "AWS_ENDPOINT_URL" not in os.environ or os.environ["AWS_ENDPOINT_URL"] != aws.endpoint
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port or 0)) != 0


def test_local_mode_serves_until_interrupted_and_stops_cleanly() -> None:
    import signal
    import urllib.request

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([sys.executable, "-m", "tools.local_mode"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops both servers" in line:
                break
        api = next(line.split()[-1] for line in lines if line.startswith("berth REST API"))
        # On a loaded machine the first request (which imports the app) can take a while.
        with urllib.request.urlopen(f"{api}/openapi.json", timeout=60) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == 0, "".join(lines)
    import socket
    from urllib.parse import urlparse

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", urlparse(api).port or 0)) != 0


def test_the_demo_target_runs_a_real_service_shape() -> None:
    """The demo's spec shows the run options and a secret: a command, a volume, a memory limit and the secret's ARN
    reach start_container.sh."""
    from chalicelib.domain.command import DeployCommand, start_container_args
    from chalicelib.domain.image_ref import parse_image_ref
    from chalicelib.domain.spec import TargetSpec
    from tools.demo import DB_LOGIN_ARN, SPEC

    spec = TargetSpec.model_validate(SPEC)
    args = start_container_args(DeployCommand("d-demo", parse_image_ref("nginx:1.27"), spec.container, None))

    assert ["--cmd", "gunicorn"] == args[args.index("--cmd"):][:2]
    assert ["--volume", "/srv/web/uploads:/app/uploads"] == args[args.index("--volume"):][:2]
    assert ["--memory", "512m"] == args[args.index("--memory"):][:2]
    assert ["--secret", f"DB_PASSWORD={DB_LOGIN_ARN}"] == args[args.index("--secret"):][:2]
