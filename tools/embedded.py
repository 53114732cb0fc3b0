"""The embedded AWS for local mode: a localaws server (moto plus berth's extensions) in a child process.

    with EmbeddedAws() as aws:          # starts `python -m localaws serve --port 0`
        aws.endpoint                    # http://127.0.0.1:PORT, also exported as AWS_ENDPOINT_URL
        aws.control                     # localaws.control.Control: outcomes, job results
On exit the child is stopped (SIGTERM, then SIGKILL after a grace period) and waited for: nothing is left behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO

from localaws.control import Control

DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "berth-local", "AWS_SECRET_ACCESS_KEY": "berth-local",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


class EmbeddedAws:
    def __init__(self, run_commands: bool = False, startup_seconds: float = 30.0) -> None:
        self._run_commands = run_commands
        self._startup = startup_seconds
        self._process: subprocess.Popen[str] | None = None
        self._saved: dict[str, str | None] = {}
        self.endpoint = ""

    def __enter__(self) -> EmbeddedAws:
        command = [sys.executable, "-m", "localaws", "serve", "--port", "0"]
        if self._run_commands:
            command.append("--run-commands")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.endpoint = _read_endpoint(self._process.stdout, self._startup)
        for name, value in {**DEMO_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}.items():
            self._saved[name] = os.environ.get(name)
            os.environ[name] = value
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):      # the embedded AWS's credentials, not the caller's
            self._saved[name] = os.environ.pop(name, None)
        return self

    @property
    def control(self) -> Control:
        return Control(self.endpoint)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            if self._process.stdout:
                self._process.stdout.close()


def _read_endpoint(stdout: IO[str] | None, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while stdout is not None and time.monotonic() < deadline:
        line = stdout.readline()
        if line.startswith("endpoint="):
            return line.strip().split("=", 1)[1]
        if not line:
            break
    raise RuntimeError("the embedded AWS (python -m localaws serve) did not start")


@contextmanager
def chalice_local(stage: str) -> Iterator[str]:
    """`chalice local` for `stage` on a free loopback port, stopped and waited for on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The stage's own settings come from .chalice/config.json; nothing of the caller's berth or Lambda settings
    # (or an AWS profile) may reach the server and point it elsewhere.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("BERTH_", "POWERTOOLS_", "AWS_LAMBDA_"))
           and name not in ("AWS_EXECUTION_ENV", "AWS_PROFILE", "AWS_SESSION_TOKEN")}
    process = subprocess.Popen([sys.executable, "-c", "from chalice.cli import main; main()", "local", "--host",
                                "127.0.0.1", "--port", str(port), "--stage", stage, "--no-autoreload"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"chalice local exited with {process.returncode}")
            try:
                urllib.request.urlopen(f"{url}/targets", timeout=2).close()  # noqa: S310 - loopback
                break
            except OSError as exc:
                if getattr(exc, "code", None):      # an HTTP error answer means it is listening
                    break
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
