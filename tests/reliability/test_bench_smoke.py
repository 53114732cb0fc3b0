"""The benchmarks still run: `python -m bench --quick` runs each one at its smallest size (a smoke run, not a
measurement: benchmarks are noisy and stay out of the suite) and prints the results table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_benchmark_runs_at_its_smallest_size() -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    table = run.stdout.split("== results")[1]
    for figure in ("cold start: a fresh process imports `pipeline_job`", "init alone: `import app`",
                   "peak memory: one pipeline job", "fleet 1: AWS calls per deployment",
                   "failure storm: 3 failures x 5 deliveries | 3 retries scheduled | exactly 3",
                   "GB-s per 10-minute deployment"):
        assert figure in table, table
    assert "SendCommand x1 (O(1))" in run.stdout and "(as expected)" in run.stdout
    first_call = next(line for line in table.splitlines() if "cold start: a fresh process" in line)
    assert re.search(r"CPU \d+\.\d\dx .* \d+ ms against \d+ ms; peak RSS \d+\.\d\dx", first_call), first_call
