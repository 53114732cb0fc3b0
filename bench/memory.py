"""Peak memory of a process that handles one pipeline job end to end, against a bare `import boto3` process.

    python -m bench.memory

Each figure is the high-water mark of a fresh interpreter's own memory (`VmHWM` in /proc/self/status; `ru_maxrss`
would also count the RSS of whichever process started it, which Linux keeps across `exec`, and `make bench` runs
this after benchmarks that grow its own process):
  boto3        `import boto3` and nothing else: the floor any Python Lambda that calls AWS starts from
  job          berth's first invocation and its continuations until success, with the embedded AWS in a child
               process (localaws server): berth's own peak, what its 256 MB Lambda holds
  job+moto     the same with moto and localaws in this process (`mock_aws`): an upper bound that also holds the
               emulator's state and modules
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from typing import Any

from bench.harness import (
    ROOT,
    Berth,
    counted_calls,
    credentials,
    job_event,
    prepare_account,
    quiet,
    seeding_client,
    spec,
)

SUBJECTS = ("boto3", "job", "job+moto")


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        (line,) = (line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024      # kB


def one_job(results: Any, set_outcome: Any) -> int:
    """Fill the account, then run one pipeline job to success; returns the number of invocations. Seeding uses berth's
    own session (`seeding_client`): a Lambda holds that one session and no other."""
    from localaws import InstanceOutcome
    from tools import emulated

    prepare_account()
    emulated.launch(seeding_client("ec2"), 3, {"app": "web"})
    image, _ = emulated.push_image(seeding_client("ecr"), "web", "v1")
    set_outcome(InstanceOutcome(polls_before_done=1))
    with counted_calls() as counter:
        berth = Berth(counter)
        params, token = json.dumps(spec("web", {"app": "web"}, image)), None
        for rounds in range(1, 20):
            job_id = str(uuid.uuid4())
            berth.invoke("pipeline_job", job_event(job_id, params, token))
            (reply,) = results(job_id)
            if reply["type"] != "success":
                raise RuntimeError(f"the job failed: {reply}")
            token = reply.get("continuationToken")
            if token is None:
                return rounds
    raise RuntimeError("the job did not finish")


def child(subject: str) -> float:
    if subject == "boto3":
        import boto3  # noqa: F401
    elif subject == "job":
        from tools.embedded import EmbeddedAws

        with quiet(), credentials(), EmbeddedAws() as aws:
            one_job(aws.control.job_results, aws.control.set_default_outcome)
    else:
        from moto import mock_aws

        import localaws

        localaws.install()
        with quiet(), credentials(), mock_aws():
            one_job(localaws.job_results, localaws.set_default_outcome)
    return peak_mb()


def measure_one(subject: str) -> float:
    """The peak of a fresh interpreter doing `subject`, in MB."""
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", subject], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure() -> dict[str, float]:
    return {subject: measure_one(subject) for subject in SUBJECTS}


def report(peaks: dict[str, float]) -> str:
    rows = [f"{'process':<10} {'peak MB':>8} {'x boto3':>8}"]
    rows += [f"{name:<10} {value:>8.1f} {value / peaks['boto3']:>8.2f}" for name, value in peaks.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth peak-memory benchmark")
    parser.add_argument("--child", choices=SUBJECTS)
    args = parser.parse_args(argv)
    if args.child:
        print(f"{child(args.child):.1f}")
        return 0
    print(report(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
