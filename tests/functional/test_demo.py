"""The README's first command runs in the suite: the demo must end with every step as it should be, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_and_every_step_passes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-m", "tools.demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("== summary", 1)[1]
    assert summary.count("PASS") == 4 and "FAIL" not in summary
    assert "success on attempt 2" in summary and "remediated and retried" in summary
    assert "wJalrXUtnFEMI" not in done.stdout + done.stderr


def test_embedded_aws_starts_answers_and_leaves_no_process_behind() -> None:
    import socket
    from urllib.parse import urlparse

    import boto3

    from tools.embedded import EmbeddedAws

    with EmbeddedAws() as aws:
        assert os.environ["AWS_ENDPOINT_URL"] == aws.endpoint
        assert boto3.client("ssm").list_commands()["Commands"] == []
        process = aws._process
        port = urlparse(aws.endpoint).port
    assert process is not None and process.poll() is not None
    assert "AWS_ENDPOINT_URL" not in os.environ or os.environ["AWS_ENDPOINT_URL"] != aws.endpoint
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port or 0)) != 0
