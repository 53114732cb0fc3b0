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
    assert summary.count("PASS") == 3 and "FAIL" not in summary
    assert "wJalrXUtnFEMI" not in done.stdout + done.stderr
