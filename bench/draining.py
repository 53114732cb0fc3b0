"""A rollout behind a load balancer: AWS calls and berth's CPU per deployment, and what one waiting continuation costs.

    python -m bench.draining [--fleet 50] [--waits 2 6]

A fleet of `fleet` instances registered in one ELBv2 target group, deployed with a canary of one and then 4 batches
(max_concurrency is the rest of the fleet over 4, rounded up). The embedded AWS is a localaws server in a child
process, so `time.process_time()` is berth's own CPU. Each deregistered target reads `draining`, and each registered
one `initial`, for `waits` DescribeTargetHealth reads (localaws.set_transition_reads): every batch then spends
`waits` continuations draining and `waits` registering. The deployment runs once per `waits`; the calls of a waiting
continuation (one that only looked: the batch still draining, or not healthy yet) must be the same whatever the number
of waits, and whatever the fleet: they are counted per continuation and compared.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Berth, counted_calls, credentials, job_event, median, prepare_account, quiet, spec

BATCHES = 4
PORT = 5000
WAITING = ("still draining", "registering: ")


@dataclass
class Run:
    fleet: int
    waits: int
    calls: Counter[str] = field(default_factory=Counter)
    cpu: float = 0.0
    invocations: int = 0
    waiting_calls: list[tuple[tuple[str, int], ...]] = field(default_factory=list)
    waiting_cpus: list[float] = field(default_factory=list)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def run_job(berth: Berth, results: Any, params: dict[str, Any], fleet: int, waits: int,
            max_rounds: int = 200) -> Run:
    """One pipeline job to its end, each continuation's calls counted on their own."""
    run = Run(fleet, waits)
    user_parameters, token = json.dumps(params), None
    for _ in range(max_rounds):
        before = Counter(berth.counter.calls)
        job_id = str(uuid.uuid4())
        measured = berth.invoke("pipeline_job", job_event(job_id, user_parameters, token))
        spent = Counter(berth.counter.calls) - before
        run.calls += spent
        run.cpu += measured.cpu
        run.invocations += 1
        replies = results(job_id)
        if len(replies) != 1:
            raise RuntimeError(f"job {job_id}: expected one result, got {replies}")
        reply = replies[0]
        summary = str(reply.get("executionDetails", {}).get("summary", ""))
        if token is not None and any(marker in summary for marker in WAITING):
            run.waiting_calls.append(tuple(sorted(spent.items())))
            run.waiting_cpus.append(measured.cpu)
        token = reply.get("continuationToken")
        if token is None:
            if reply["type"] != "success":
                raise RuntimeError(f"job {job_id}: expected success, got {reply}")
            return run
    raise RuntimeError(f"the job did not finish in {max_rounds} invocations")


def measure(fleets: tuple[int, ...] = (50,), waits: tuple[int, ...] = (2, 6)) -> list[Run]:
    import boto3

    from localaws import InstanceOutcome
    from tools import emulated
    from tools.embedded import EmbeddedAws

    runs: list[Run] = []
    with quiet(), credentials(), EmbeddedAws() as aws, counted_calls() as counter:
        prepare_account()
        ec2, ecr, elbv2 = boto3.client("ec2"), boto3.client("ecr"), boto3.client("elbv2")
        image, _ = emulated.push_image(ecr, "web", "v1")
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=2))
        berth = Berth(counter)
        emulated.launch(ec2, 1, {"fleet": "warmup"})
        from bench.fleet import run_job as plain_job

        plain_job(berth, aws.control.job_results, spec("warmup", {"fleet": "warmup"}, image))
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        for size in fleets:
            tags = {"fleet": f"lb{size}"}
            instances = emulated.launch(ec2, size, tags)
            arn = elbv2.create_target_group(Name=f"lb{size}", Protocol="HTTP", Port=80, VpcId=vpc,
                                            TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
            aws.control.set_transition_reads(draining=0, initial=0)      # the fleet starts healthy
            elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": PORT} for i in instances])
            batch = math.ceil((size - 1) / BATCHES)
            params = spec(f"lb-{size}", tags, image, health_check={"path": "/health", "port": PORT},
                          load_balancer={"target_group_arns": [arn]},
                          rollout={"max_concurrency": str(batch), "max_errors": "0", "canary": {"instances": 1}})
            for wait in waits:
                aws.control.set_transition_reads(draining=wait, initial=wait)
                runs.append(run_job(berth, aws.control.job_results, params, size, wait))
    return runs


def check(runs: list[Run]) -> list[str]:
    lines = []
    shapes = {shape for run in runs for shape in run.waiting_calls}
    lines.append(f"calls of a waiting continuation: {len(shapes)} distinct set(s) over "
                 f"{sum(len(r.waiting_calls) for r in runs)} waiting continuations, fleets "
                 f"{sorted({r.fleet for r in runs})}, waits {sorted({r.waits for r in runs})}"
                 f" ({'constant' if len(shapes) <= 2 else 'NOT constant'}: draining and registering each read "
                 "once)")
    for shape in sorted(shapes):
        lines.append("  " + ", ".join(f"{name} {n}" for name, n in shape))
    by_fleet: dict[int, list[Run]] = {}
    for run in runs:
        by_fleet.setdefault(run.fleet, []).append(run)
    for fleet, group in by_fleet.items():
        low, high = min(group, key=lambda r: r.waits), max(group, key=lambda r: r.waits)
        if high.waits > low.waits:
            extra = high.invocations - low.invocations
            per = (high.total_calls - low.total_calls) / max(1, extra)
            lines.append(f"fleet {fleet}: {extra} more waiting continuations cost {high.total_calls - low.total_calls}"
                         f" more calls, {per:.1f} a continuation")
    return lines


def report(runs: list[Run]) -> str:
    rows = [f"{'fleet':>5} {'waits':>5} {'invocations':>11} {'calls/deploy':>12} {'CPU/deploy ms':>13} "
            f"{'waiting CPU ms':>14}"]
    for run in runs:
        rows.append(f"{run.fleet:>5} {run.waits:>5} {run.invocations:>11} {run.total_calls:>12} "
                    f"{run.cpu * 1000:>13.0f} {median(run.waiting_cpus) * 1000 if run.waiting_cpus else 0:>14.1f}")
    rows += ["", *check(runs), "", "calls per deployment by operation:"]
    for run in runs:
        rows.append(f"  fleet {run.fleet}, waits {run.waits}: "
                    + ", ".join(f"{name} {n}" for name, n in sorted(run.calls.items())))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth load balancer draining benchmark")
    parser.add_argument("--fleet", type=int, nargs="+", default=[50])
    parser.add_argument("--waits", type=int, nargs="+", default=[2, 6])
    args = parser.parse_args(argv)
    print(report(measure(tuple(args.fleet), tuple(args.waits))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
