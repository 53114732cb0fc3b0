"""Fleet scale: AWS calls per deployment and berth's CPU per invocation for fleets of 1, 50 and 1000 tagged instances.

    python -m bench.fleet [--sizes 1 50 1000] [--repeats 3]
    python -m bench.fleet --profile 1000       where one dispatch's and one poll's CPU goes, by function

The embedded AWS is a localaws server in a child process, so `time.process_time()` around a handler is berth's own
CPU (its code, pydantic, botocore's signing and parsing), never the emulator's. Each deployment is one pipeline job
followed to success: the first invocation dispatches (one SendCommand by tag), each continuation polls
(ListCommandInvocations, 50 results a page). Instances answer InProgress on their first read, so a deployment takes
three invocations whatever the fleet size: dispatch, a poll that sees it running, a poll that sees it done.
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
        return median([cpu for d in self.deployments for cpu in d.poll_cpus])

    @property
    def invocation_cpu(self) -> float:
        """Median CPU over every invocation of every deployment (dispatch and polls alike)."""
        return median([cpu for d in self.deployments for cpu in (d.first_cpu, *d.poll_cpus)])

    @property
    def walls(self) -> list[float]:
        return [wall for d in self.deployments for wall in d.walls]


def run_job(berth: Berth, results: Any, params: dict[str, Any], max_rounds: int = 20) -> Deployment:
    """One pipeline job from first invocation to success, as CodePipeline drives it (a new job id each round)."""
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
        if len(replies) != 1 or replies[0]["type"] != "success":
            raise RuntimeError(f"job {job_id}: expected one success result, got {replies}")
        token = replies[0].get("continuationToken")
        if token is None:
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
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=1))
        berth = Berth(counter)
        # Warm up on a fleet of its own: the first invocation in a process builds clients and loads modules.
        emulated.launch(ec2, 1, {"fleet": "warmup"})
        run_job(berth, aws.control.job_results, spec("warmup", {"fleet": "warmup"}, image))
        found = []
        for size in sizes:
            tags = {"fleet": f"n{size}"}
            emulated.launch(ec2, size, tags)
            result = FleetResult(size)
            for _ in range(repeats):
                result.deployments.append(run_job(berth, aws.control.job_results, spec(f"fleet-{size}", tags, image)))
            found.append(result)
        return found


def check(results: list[FleetResult]) -> list[str]:
    """The targets, each as a line saying whether it holds."""
    lines = []
    for result in results:
        sends = result.calls.get("ssm.SendCommand", 0)
        polls = result.deployments[-1].invocations - 1
        pages = result.calls.get("ssm.ListCommandInvocations", 0)
        expected_pages = polls * max(1, math.ceil(result.size / PAGE))
        lines.append(f"fleet {result.size}: SendCommand x{sends} ({'O(1)' if sends == 1 else 'NOT O(1)'}), "
                     f"ListCommandInvocations x{pages} = {polls} polls x {max(1, math.ceil(result.size / PAGE))} "
                     f"pages ({'as expected' if pages == expected_pages else f'expected {expected_pages}'})")
    return lines


def report(results: list[FleetResult]) -> str:
    base = results[0]
    rows = [f"{'fleet':>6} {'calls/deploy':>12} {'invocations':>11} {'dispatch ms':>11} {'poll ms':>8} "
            f"{'per-invocation ms':>17} {'x fleet 1':>9}"]
    for result in results:
        rows.append(f"{result.size:>6} {result.calls_per_deployment:>12} {result.deployments[-1].invocations:>11} "
                    f"{result.first_cpu * 1000:>11.1f} {result.poll_cpu * 1000:>8.1f} "
                    f"{result.invocation_cpu * 1000:>17.1f} {result.invocation_cpu / base.invocation_cpu:>9.2f}")
    rows += ["", *check(results), "", "calls per deployment by operation:"]
    for result in results:
        rows.append(f"  fleet {result.size}: " + ", ".join(f"{name} {n}" for name, n in sorted(result.calls.items())))
    return "\n".join(rows)


def profile(size: int, top: int = 25) -> str:
    """cProfile of one dispatch and one poll at `size` instances, by own time (where the CPU per invocation goes)."""
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
        aws.control.set_default_outcome(InstanceOutcome(polls_before_done=1))
        berth = Berth(counter)
        emulated.launch(ec2, 1, {"fleet": "warmup"})
        run_job(berth, aws.control.job_results, spec("warmup", {"fleet": "warmup"}, image))
        emulated.launch(ec2, size, {"fleet": "profiled"})
        params, token = json.dumps(spec("profiled", {"fleet": "profiled"}, image)), None
        for name in ("dispatch", "poll"):
            job_id = str(uuid.uuid4())
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            berth.invoke("pipeline_job", job_event(job_id, params, token))
            profiler.disable()
            token = aws.control.job_results(job_id)[0]["continuationToken"]
            out.write(f"\n== {name} at {size} instances (CPU seconds)\n")
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth fleet-scale benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=int, metavar="SIZE", help="profile one dispatch and one poll instead")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.profile))
        return 0
    print(report(measure(tuple(args.sizes), args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
