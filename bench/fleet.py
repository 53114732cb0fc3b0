"""Fleet scale: AWS calls per deployment and berth's CPU per invocation for fleets of 1, 50 and 1000 tagged instances.

    python -m bench.fleet [--sizes 1 50 1000] [--repeats 3]
    python -m bench.fleet --profile 1000       where each kind of invocation's CPU goes, by function

The embedded AWS is a localaws server in a child process, so `time.process_time()` around a handler is berth's own
CPU (its code, pydantic, botocore's signing and parsing), never the emulator's. Each deployment is one pipeline job
followed to its end, in three kinds of invocation:
- dispatch: validate, record, resolve the tagged fleet (DescribeTags), one SendCommand by tag;
- running poll: the command's counts (one ListCommands), whatever the fleet size;
- final: the command is over. A clean success (SSM's Success/Success over as many targets as berth expected) needs
  nothing more; anything else reads every instance's result (ListCommandInvocations, 50 a page), once.
Instances answer InProgress for their first two reads, so a deployment takes four invocations at every fleet size:
dispatch, two running polls, the final one. Per fleet size, `repeats` clean deployments, then one in which one
instance fails (exit 21), whose final invocation reads every result page with exit codes and output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Berth, counted_calls, credentials, job_event, median, prepare_account, quiet, spec

DEFAULT_SIZES = (1, 50, 1000)
PAGE = 50
READS_BEFORE_DONE = 2


@dataclass
class Deployment:
    """One pipeline job followed to its end."""

    first_cpu: float
    poll_cpus: list[float]
    walls: list[float]
    calls: dict[str, int]
    invocations: int
    first_calls: int


@dataclass
class FleetResult:
    size: int
    deployments: list[Deployment] = field(default_factory=list)
    failed: Deployment | None = None          # one instance failing: every result page read

    @property
    def calls(self) -> dict[str, int]:
        return self.deployments[-1].calls

    @property
    def calls_per_deployment(self) -> int:
        return sum(self.calls.values())

    @property
    def first_cpu(self) -> float:
        return median([d.first_cpu for d in self.deployments])

    @property
    def poll_cpu(self) -> float:
        """Median CPU of a running poll (every continuation but the last)."""
        return median([cpu for d in self.deployments for cpu in d.poll_cpus[:-1]])

    @property
    def final_cpu(self) -> float:
        """Median CPU of a clean success's final invocation (the last continuation)."""
        return median([d.poll_cpus[-1] for d in self.deployments])

    @property
    def failed_final_cpu(self) -> float:
        return self.failed.poll_cpus[-1] if self.failed else 0.0

    @property
    def deployment_cpu(self) -> float:
        """Median CPU of a whole deployment, every invocation summed."""
        return median([d.first_cpu + sum(d.poll_cpus) for d in self.deployments])

    @property
    def invocation_cpu(self) -> float:
        """Median CPU over every invocation of every deployment (dispatch and polls alike)."""
        return median([cpu for d in self.deployments for cpu in (d.first_cpu, *d.poll_cpus)])

    @property
    def walls(self) -> list[float]:
        return [wall for d in self.deployments for wall in d.walls]


def run_job(berth: Berth, results: Any, params: dict[str, Any], max_rounds: int = 20,
            expect: str = "success") -> Deployment:
    """One pipeline job from first invocation to its end, as CodePipeline drives it (a new job id each round)."""
    user_parameters = json.dumps(params)
    before = dict(berth.counter.calls)
    token: str | None = None
    cpus: list[float] = []
    walls: list[float] = []
    first_calls = 0
    for _ in range(max_rounds):
        job_id = str(uuid.uuid4())
        measured = berth.invoke("pipeline_job", job_event(job_id, user_parameters, token))
        cpus.append(measured.cpu)
        walls.append(measured.wall)
        if len(cpus) == 1:
            first_calls = berth.counter.total() - sum(before.values())
        replies = results(job_id)
        if len(replies) != 1:
            raise RuntimeError(f"job {job_id}: expected one result, got {replies}")
        token = replies[0].get("continuationToken")
        if token is None:  # the job's last result: a success, or the failure `expect` asks for
            if replies[0]["type"] != expect:
                raise RuntimeError(f"job {job_id}: expected {expect}, got {replies}")
            calls = {name: n - before.get(name, 0) for name, n in berth.counter.calls.items()
                     if n - before.get(name, 0)}
            return Deployment(cpus[0], cpus[1:], walls, calls, len(cpus), first_calls)
    raise RuntimeError(f"the job did not finish in {max_rounds} invocations")


def measure(sizes: tuple[int, ...] = DEFAULT_SIZES, repeats: int = 3) -> list[FleetResult]:
    import boto3

    from localaws import InstanceOutcome
    from tools import emulated
    from tools.embedded import EmbeddedAws

    with quiet(), credentials(), EmbeddedAws() as aws, counted_calls() as counter:
        prepare_account()
        ec2, ecr = boto3.client("ec2"), boto3.client("ecr")
        image, _ = emulated.push_image(ecr, "web", "v1")
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=READS_BEFORE_DONE))
        berth = Berth(counter)
        # Warm up on a fleet of its own: the first invocation in a process builds clients and loads modules.
        emulated.launch(ec2, 1, {"fleet": "warmup"})
        run_job(berth, aws.control.job_results, spec("warmup", {"fleet": "warmup"}, image))
        found = []
        for size in sizes:
            tags = {"fleet": f"n{size}"}
            instances = emulated.launch(ec2, size, tags)
            result = FleetResult(size)
            for _ in range(repeats):
                result.deployments.append(run_job(berth, aws.control.job_results, spec(f"fleet-{size}", tags, image)))
            aws.control.set_outcome(instances[-1], InstanceOutcome(
                status="Failed", response_code=21, stdout="berth-step: pull\n", stderr="manifest unknown",
                polls_before_done=READS_BEFORE_DONE))
            result.failed = run_job(berth, aws.control.job_results,
                                    spec(f"fleet-{size}", tags, image, retry={"max_attempts": 1}), expect="failure")
            found.append(result)
        return found


def pages(size: int) -> int:
    return max(1, math.ceil(size / PAGE))


def check(results: list[FleetResult]) -> list[str]:
    """The targets, each as a line saying whether it holds."""
    base = results[0]
    lines = []
    for result in results:
        sends = result.calls.get("ssm.SendCommand", 0)
        clean_pages = result.calls.get("ssm.ListCommandInvocations", 0)
        failed_pages = result.failed.calls.get("ssm.ListCommandInvocations", 0) if result.failed else 0
        lines.append(f"fleet {result.size}: SendCommand x{sends} ({'O(1)' if sends == 1 else 'NOT O(1)'}), "
                     f"ListCommandInvocations x{clean_pages} for a clean success "
                     f"({'as expected' if clean_pages == 0 else 'expected 0'}), x{failed_pages} for a failure "
                     f"({'as expected' if failed_pages == pages(result.size) else f'expected {pages(result.size)}'})")
    for result in results[1:]:
        for kind, ratio in (("dispatch", result.first_cpu / base.first_cpu),
                            ("running poll", result.poll_cpu / base.poll_cpu),
                            ("final (clean success)", result.final_cpu / base.final_cpu)):
            lines.append(f"fleet {result.size}: {kind} CPU {ratio:.2f}x fleet {base.size} "
                         f"({'within' if ratio <= 2 else 'OVER'} 2x)")
        extra = (result.failed_final_cpu - base.failed_final_cpu) / max(1, pages(result.size) - pages(base.size))
        ratio = result.failed_final_cpu / base.failed_final_cpu
        more = pages(result.size) - pages(base.size)
        lines.append(f"fleet {result.size}: final read of a failure {ratio:.2f}x fleet {base.size} = fleet "
                     f"{base.size}'s + {more} more pages x {extra * 1000:.1f} ms")
    return lines


def report(results: list[FleetResult]) -> str:
    base = results[0]
    rows = [f"{'fleet':>6} {'calls/deploy':>12} {'invocations':>11} {'dispatch ms':>11} {'running poll ms':>15} "
            f"{'final ms':>8} {'deployment ms':>13} {'median/invocation ms':>20} {'x fleet 1':>9} "
            f"{'failure read ms':>15}"]
    for result in results:
        rows.append(f"{result.size:>6} {result.calls_per_deployment:>12} {result.deployments[-1].invocations:>11} "
                    f"{result.first_cpu * 1000:>11.1f} {result.poll_cpu * 1000:>15.1f} "
                    f"{result.final_cpu * 1000:>8.1f} {result.deployment_cpu * 1000:>13.1f} "
                    f"{result.invocation_cpu * 1000:>20.1f} {result.invocation_cpu / base.invocation_cpu:>9.2f} "
                    f"{result.failed_final_cpu * 1000:>15.1f}")
    rows += ["", *check(results), "", "calls per clean deployment by operation:"]
    for result in results:
        rows.append(f"  fleet {result.size}: " + ", ".join(f"{name} {n}" for name, n in sorted(result.calls.items())))
    return "\n".join(rows)


def profile(size: int, top: int = 25) -> str:
    """cProfile of a dispatch, a running poll and the final read at `size` instances, by own time."""
    import cProfile
    import io
    import pstats

    import boto3

    from localaws import InstanceOutcome
    from tools import emulated
    from tools.embedded import EmbeddedAws

    out = io.StringIO()
    with quiet(), credentials(), EmbeddedAws() as aws, counted_calls() as counter:
        prepare_account()
        ec2 = boto3.client("ec2")
        image, _ = emulated.push_image(boto3.client("ecr"), "web", "v1")
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=READS_BEFORE_DONE))
        berth = Berth(counter)
        emulated.launch(ec2, 1, {"fleet": "warmup"})
        run_job(berth, aws.control.job_results, spec("warmup", {"fleet": "warmup"}, image))
        emulated.launch(ec2, size, {"fleet": "profiled"})
        params, token = json.dumps(spec("profiled", {"fleet": "profiled"}, image)), None
        for name in ("dispatch", *["running poll"] * READS_BEFORE_DONE, "final (clean success)"):
            job_id = str(uuid.uuid4())
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            berth.invoke("pipeline_job", job_event(job_id, params, token))
            profiler.disable()
            token = aws.control.job_results(job_id)[0].get("continuationToken")
            out.write(f"\n== {name} at {size} instances (CPU seconds)\n")
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth fleet-scale benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=int, metavar="SIZE", help="profile each kind of invocation instead")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.profile))
        return 0
    print(report(measure(tuple(args.sizes), args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
