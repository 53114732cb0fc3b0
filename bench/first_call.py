"""Cold first invocation: berth's pipeline Lambda against a plain boto3 peer doing the same AWS work.

    python -m bench.first_call --runs 15        (`make bench` runs it with the other benchmarks)

Each sample is a fresh interpreter that imports a handler module and hands it AWS's sample CodePipeline job event
(tests/events/codepipeline_job.json; its artifact holds imagedefinitions.json) once, to the job's first continuation,
then exits: what a cold Lambda spends on its init and first call. The two subjects:
  berth   `app.pipeline_job`, with the `test` stage's settings (retries configured, as the deployed stages have them)
  peer    bench/peer_function.py: S3 GetObject, ECR DescribeImages, EC2 DescribeTags, a DynamoDB conditional
          PutItem, SSM SendCommand, CodePipeline PutJobSuccessResult, written plainly with boto3
Both talk to the same embedded AWS (a localaws server in a child process), so a child's CPU time, user + sys from
`wait4`, is the handler's alone. Its peak RSS is the high-water mark of its own memory (`VmHWM`, which the child
reports as it exits): `wait4`'s `ru_maxrss` would be at least this benchmark's own RSS at the moment it started the
child, since Linux keeps the replaced image's high-water mark across `exec`. Rounds are interleaved (the order
alternating), after one discarded warm-up of each, so the machine's noise falls on both alike. Every run must leave
exactly one success result with a continuation token on its job, or the benchmark fails.

On a shared machine CPU time moves by tens of percent from minute to minute, both subjects alike, so the ratio's
spread is reported with it. `--instructions` also counts each subject's instructions under valgrind's cachegrind (one
run each, about a minute): a figure that other processes cannot move, repeatable to 0.1%, though blind to what the
kernel does for the process (its system time).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.harness import ROOT, STAGE, median, patched_environ, prepare_account, seeding_client, spec

SUBJECTS = {"berth": (ROOT, "app", "pipeline_job"), "peer": (ROOT / "bench", "peer_function", "handler")}
TAGS = {"app": "web", "env": "bench"}
# The child: Lambda's bootstrap in brief. The handler's directory first on sys.path; the event from a file.
RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
with open(sys.argv[4]) as source:
    event = json.load(source)
handler = getattr(__import__(sys.argv[2]), sys.argv[3])

class Context:
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"
    function_name = "pipeline_job"

handler(event, Context())
with open("/proc/self/status") as status:
    sys.stderr.write("".join(line for line in status if line.startswith("VmHWM:")))
"""


@dataclass(frozen=True)
class Sample:
    user: float         # seconds
    sys: float          # seconds
    peak_mb: float

    @property
    def cpu(self) -> float:
        return self.user + self.sys


@dataclass
class Comparison:
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {name: [] for name in SUBJECTS})
    instructions: dict[str, int] = field(default_factory=dict)      # under cachegrind, when asked for

    @property
    def instructions_ratio(self) -> float | None:
        return self.instructions["berth"] / self.instructions["peer"] if self.instructions else None

    def cpu(self, subject: str) -> float:
        return median([s.cpu for s in self.samples[subject]])

    def peak(self, subject: str) -> float:
        return median([s.peak_mb for s in self.samples[subject]])

    @property
    def cpu_ratio(self) -> float:
        """berth's CPU over the peer's in each round (the two ran back to back): the median of the rounds."""
        return median(self.round_ratios(lambda s: s.cpu))

    @property
    def peak_ratio(self) -> float:
        return median(self.round_ratios(lambda s: s.peak_mb))

    def round_ratios(self, value: Callable[[Sample], float]) -> list[float]:
        """berth over peer, round by round: the spread of the ratio."""
        return sorted(value(b) / value(p) for b, p in zip(self.samples["berth"], self.samples["peer"], strict=True))

    def spread(self, value: Callable[[Sample], float]) -> str:
        """The round ratios' quartiles and range, e.g. "1.21-1.30x, range 1.12-1.41x"."""
        ratios = self.round_ratios(value)
        low, _, high = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else (ratios[0],) * 3
        return f"{low:.2f}-{high:.2f}x, range {ratios[0]:.2f}-{ratios[-1]:.2f}x"


class World:
    """The embedded AWS with what a first invocation needs: berth's table, a tagged fleet, an ECR image, and the
    pipeline's artifact in S3."""

    def __init__(self) -> None:
        prepare_account()
        from tools import emulated

        emulated.launch(seeding_client("ec2"), 3, TAGS)
        self.image, _ = emulated.push_image(seeding_client("ecr"), "web", "20240912")
        self.bucket, self.key = emulated.put_artifact(
            seeding_client("s3"), {"imagedefinitions.json": json.dumps([{"name": "web", "imageUri": self.image}])},
            "codepipeline-artifacts", "pipeline/BuildArtif/bench")

    def event(self) -> tuple[str, dict[str, Any]]:
        """A new job for a new target (a target's lock would make a second first invocation wait instead)."""
        from tools.local_pipeline import job_event

        job_id = str(uuid.uuid4())
        params = spec(f"bench-{uuid.uuid4().hex[:10]}", TAGS, self.image)
        del params["image"]     # the image comes from the artifact, as a pipeline's build hands it over
        return job_id, job_event(json.dumps(params), self.bucket, self.key, job_id=job_id)


def run_child(subject: str, event: dict[str, Any], env: dict[str, str]) -> Sample:
    """One fresh interpreter: import the subject's handler, handle `event`, exit. Its CPU and peak come from wait4."""
    usage, errors = _run([], subject, event, env)
    peak = re.search(r"^VmHWM:\s+(\d+) kB", errors, re.M)
    if peak is None:
        raise RuntimeError(f"{subject} did not report its peak memory:\n{errors[-3000:]}")
    return Sample(usage.ru_utime, usage.ru_stime, int(peak.group(1)) / 1024)


def count_instructions(subject: str, event: dict[str, Any], env: dict[str, str]) -> int:
    """The same run under cachegrind: the instructions the child executed (Python's own allocator off, as valgrind
    wants; for both subjects alike)."""
    _, errors = _run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"], subject,
                     event, {**env, "PYTHONMALLOC": "malloc"})
    found = re.search(r"I\s+refs:\s+([\d,]+)", errors)
    if found is None:
        raise RuntimeError(f"no instruction count from cachegrind:\n{errors[-3000:]}")
    return int(found.group(1).replace(",", ""))


def _run(prefix: list[str], subject: str, event: dict[str, Any], env: dict[str, str]) -> tuple[Any, str]:
    directory, module, function = SUBJECTS[subject]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as source, tempfile.TemporaryFile("w+") as errors:
        json.dump(event, source)
        source.flush()
        child = subprocess.Popen([*prefix, sys.executable, "-c", RUNNER, str(directory), module, function,
                                  source.name], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        text = errors.read()
        if child.returncode != 0:
            raise RuntimeError(f"{subject} exited with {child.returncode}:\n{text[-3000:]}")
    return usage, text


def measure(runs: int, instructions: bool = False) -> Comparison:
    """`runs` interleaved rounds of both subjects, each in a fresh interpreter, against one embedded AWS; then, if
    asked, one run of each under cachegrind."""
    from tools.embedded import EmbeddedAws
    from tools.provision import stage_environment

    with EmbeddedAws() as aws, patched_environ(dict(stage_environment(STAGE))), \
            tempfile.TemporaryDirectory(prefix="bench-pycache-") as bytecode:
        world = World()
        # Both subjects load every module from bytecode, compiled by the warm-up round into a cache of the
        # benchmark's own: the same state whatever the caller's PYTHONDONTWRITEBYTECODE or __pycache__ folders.
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
               "PYTHONPYCACHEPREFIX": bytecode}
        results = aws.control.job_results
        comparison = Comparison()
        for round_number in range(runs + 1):
            order = list(SUBJECTS) if round_number % 2 else list(reversed(SUBJECTS))
            for subject in order:
                job_id, event = world.event()
                sample = run_child(subject, event, env)
                _check_first_continuation(subject, results(job_id))
                if round_number:            # round 0 warms the page cache and the bytecode caches
                    comparison.samples[subject].append(sample)
        for subject in SUBJECTS if instructions else ():
            job_id, event = world.event()
            comparison.instructions[subject] = count_instructions(subject, event, env)
            _check_first_continuation(subject, results(job_id))
    return comparison


def _check_first_continuation(subject: str, results: list[dict[str, Any]]) -> None:
    if len(results) != 1 or results[0]["type"] != "success" or "continuationToken" not in results[0]:
        raise RuntimeError(f"{subject}: expected one success with a continuation token, got {results}")


def report(comparison: Comparison) -> str:
    rows = [f"{'subject':<8} {'CPU ms: median (min-max)':>26} {'user':>6} {'sys':>5} {'peak MB: median (min-max)':>28}"]
    for name, samples in comparison.samples.items():
        cpus, peaks = [s.cpu * 1000 for s in samples], [s.peak_mb for s in samples]
        rows.append(f"{name:<8} {median(cpus):>12.0f} ({min(cpus):>4.0f}-{max(cpus):<4.0f})   "
                    f"{median([s.user * 1000 for s in samples]):>6.0f} {median([s.sys * 1000 for s in samples]):>5.0f} "
                    f"{median(peaks):>14.1f} ({min(peaks):.1f}-{max(peaks):.1f})")
    rows.append(f"berth / peer, median of {len(comparison.samples['berth'])} rounds: CPU {comparison.cpu_ratio:.2f}x "
                f"(quartiles {comparison.spread(lambda s: s.cpu)}); peak RSS {comparison.peak_ratio:.2f}x "
                f"(quartiles {comparison.spread(lambda s: s.peak_mb)})")
    if comparison.instructions:
        rows.append(f"instructions (cachegrind): berth {comparison.instructions['berth'] / 1e6:.0f} M, peer "
                    f"{comparison.instructions['peer'] / 1e6:.0f} M: {comparison.instructions_ratio:.2f}x")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth's cold first invocation against a plain boto3 peer")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--instructions", action="store_true", help="also count instructions under cachegrind")
    args = parser.parse_args(argv)
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (Debian: apt-get install valgrind)")
    print(report(measure(args.runs, args.instructions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
