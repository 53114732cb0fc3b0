"""Cold start: importing each Lambda's entry module in fresh processes, against a bare `import boto3` in the same run.

    python -m bench.cold_start --runs 21        (`make bench` runs it with the other benchmarks)

Prints medians and ratios. Three imports are timed, each in its own fresh interpreter, interleaved so machine noise
falls on all of them alike:
  boto3        `import boto3`, the floor every Python Lambda that calls AWS pays
  app          `import app`, what Lambda's init phase runs for every berth function
  first job    `import app` plus every module the pipeline job's first invocation loads (botocore, pydantic, services)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBJECTS = {
    "boto3": "import boto3",
    "app": "import app",
    "first job": "import app, botocore.session, botocore.client, chalicelib.wiring, chalicelib.services.pipeline_job, "
                 "chalicelib.adapters.store",
}
PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def measure(runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in SUBJECTS}
    for _ in range(runs):
        for name, stmt in SUBJECTS.items():
            out = subprocess.run([sys.executable, "-c", PROBE.format(stmt=stmt)], cwd=ROOT, capture_output=True,
                                 text=True, check=True)
            samples[name].append(float(out.stdout.strip()))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description="berth cold-start benchmark")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    medians = measure(args.runs)
    floor = medians["boto3"]
    print(f"{'import':<12} {'median ms':>10} {'x boto3':>8}")
    for name, value in medians.items():
        print(f"{name:<12} {value * 1000:>10.1f} {value / floor:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
