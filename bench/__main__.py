"""Every benchmark, one after the other, then one results table (the README's `## Benchmarks` table).

    make bench                 (python -m bench)
    python -m bench --quick    each benchmark at its smallest size: proves the code runs, measures nothing

Every figure is a ratio or a count within this run: the machine is shared and noisy, so absolute times from
different runs do not compare. Each part also runs alone:
`python -m bench.first_call|cold_start|memory|fleet|storm|swap`. The swap benchmark needs podman
(tests/containers/setup_engine.sh); without it its row says why it was skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import date

from bench import cold_start, costs, first_call, fleet, memory, storm, swap
from tests.containers.support import EngineUnavailable


@dataclass(frozen=True)
class Sizes:
    first_call_rounds: int
    first_call_instructions: bool
    cold_runs: int
    fleets: tuple[int, ...]
    repeats: int
    storm: int
    memory_subjects: tuple[str, ...]
    swaps: int


FULL = Sizes(first_call_rounds=15, first_call_instructions=True, cold_runs=21, fleets=(1, 50, 1000), repeats=3,
             storm=1000, memory_subjects=memory.SUBJECTS, swaps=20)
QUICK = Sizes(first_call_rounds=1, first_call_instructions=False, cold_runs=1, fleets=(1,), repeats=1, storm=3,
              memory_subjects=("boto3", "job"), swaps=2)


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def run(sizes: Sizes) -> list[tuple[str, str, str]]:
    """Runs every benchmark, printing each one's own report; returns the table's rows (figure, result, target)."""
    rows: list[tuple[str, str, str]] = []
    section(f"cold first invocation: fresh processes, berth against a plain boto3 peer, {sizes.first_call_rounds} "
            "rounds")
    counting = sizes.first_call_instructions and shutil.which("valgrind") is not None
    first = first_call.measure(sizes.first_call_rounds, instructions=counting)
    print(first_call.report(first))
    if sizes.first_call_instructions and not counting:
        print("(no valgrind: instructions not counted)")
    rows.append(("cold start: a fresh process imports `pipeline_job` and takes AWS's sample job event to its first "
                 "continuation, against a plain boto3 function doing the same AWS work (CPU user+sys and peak RSS, "
                 f"ratios round by round, median of {sizes.first_call_rounds} interleaved rounds)",
                 f"CPU {first.cpu_ratio:.2f}x (quartiles {first.spread(lambda s: s.cpu)}), "
                 f"{first.cpu('berth') * 1000:.0f} ms against {first.cpu('peer') * 1000:.0f} ms; peak RSS "
                 f"{first.peak_ratio:.2f}x ({first.peak('berth'):.0f} MB against {first.peak('peer'):.0f} MB)"
                 + (f"; instructions {first.instructions_ratio:.2f}x (cachegrind)" if first.instructions else ""),
                 "≤ 1.2x"))

    section(f"cold start, imports alone: fresh processes, medians of {sizes.cold_runs}")
    medians = cold_start.measure(sizes.cold_runs)
    floor = medians["boto3"]
    for name, value in medians.items():
        print(f"{name:<12} {value * 1000:>8.1f} ms {value / floor:>6.2f}x boto3")
    rows.append(("init alone: `import app` (what Lambda's init runs for every function; the work waits for the first "
                 "call)", f"{medians['app'] / floor:.2f}x `import boto3`", "informative"))

    section("peak memory (VmHWM of a fresh process)")
    peaks = {subject: memory.measure_one(subject) for subject in sizes.memory_subjects}
    print(memory.report(peaks))
    rows.append(("peak memory: one pipeline job end to end (emulator in a child process)",
                 f"{peaks['job']:.0f} MB ({peaks['job'] / peaks['boto3']:.1f}x a bare `import boto3`: "
                 f"{peaks['boto3']:.0f} MB)", "well under 128 MB"))
    if "job+moto" in peaks:
        rows.append(("peak memory: the same with moto + localaws in the process", f"{peaks['job+moto']:.0f} MB",
                     "(upper bound, emulator included)"))

    section(f"fleet scale: fleets of {', '.join(map(str, sizes.fleets))}, {sizes.repeats} deployment(s) each")
    fleets = fleet.measure(sizes.fleets, sizes.repeats)
    print(fleet.report(fleets))
    base = fleets[0]
    for result in fleets:
        failed_pages = result.failed.calls.get("ssm.ListCommandInvocations", 0) if result.failed else 0
        rows.append((f"fleet {result.size}: AWS calls per deployment", f"{result.calls_per_deployment} "
                     f"(SendCommand {result.calls.get('ssm.SendCommand', 0)}, ListCommands "
                     f"{result.calls.get('ssm.ListCommands', 0)}, ListCommandInvocations "
                     f"{result.calls.get('ssm.ListCommandInvocations', 0)}; {result.deployments[-1].invocations} "
                     f"invocations); with one instance failing, ListCommandInvocations {failed_pages}",
                     "1 SendCommand; 1 ListCommands a poll; result pages (⌈n/50⌉) only when read"))
    for result in fleets[1:]:
        rows.append((f"fleet {result.size}: berth CPU per invocation against fleet {base.size}",
                     f"dispatch {result.first_cpu / base.first_cpu:.2f}x, running poll "
                     f"{result.poll_cpu / base.poll_cpu:.2f}x, final {result.final_cpu / base.final_cpu:.2f}x; "
                     f"median of all {result.invocation_cpu / base.invocation_cpu:.2f}x", "≤ 2x at 1000"))
        rows.append((f"fleet {result.size}: berth CPU per deployment against fleet {base.size}",
                     f"{result.deployment_cpu / base.deployment_cpu:.2f}x "
                     f"({result.deployment_cpu * 1000:.0f} ms against {base.deployment_cpu * 1000:.0f} ms)", ""))
        rows.append((f"fleet {result.size}: a failure's final invocation (every result page read) against fleet "
                     f"{base.size}'s", f"{result.failed_final_cpu / base.failed_final_cpu:.2f}x "
                     f"({fleet.pages(result.size)} pages against {fleet.pages(base.size)})", "grows with result pages"))

    section(f"failure storm: {sizes.storm} failed deployments, 5 deliveries of each event, shuffled")
    stormed = storm.measure(sizes.storm, 5)
    print(storm.report(stormed))
    rows.append((f"failure storm: {stormed.count} failures x {stormed.copies} deliveries",
                 f"{stormed.retries_scheduled} retries scheduled", f"exactly {stormed.count}"))
    rows.append(("failure storm: events per second of handler CPU", f"{stormed.events_per_cpu_second:.0f}", "(count)"))

    section("Lambda GB-seconds per 10-minute deployment: continuation tokens against sleeping in one invocation")
    middle = fleets[len(fleets) // 2]
    model = costs.CostModel(
        memory_gb=costs.configured_memory_gb(), init_seconds=medians["first job"],
        dispatch_seconds=median_of([d.walls[0] for d in middle.deployments]),
        dispatch_calls=first_calls(middle), poll_calls=poll_calls(middle),
        poll_seconds=median_of([wall for d in middle.deployments for wall in d.walls[1:]]))
    print(f"(durations from fleet {middle.size})")
    print("\n".join(model.arithmetic()))
    rows.append((f"GB-s per 10-minute deployment (fleet {middle.size})",
                 f"berth {model.berth_gb_seconds:.2f}, naive {model.naive_gb_seconds:.0f} "
                 f"({model.naive_gb_seconds / model.berth_gb_seconds:.0f}x less)", "(ratio)"))

    section(f"swaps on podman: {sizes.swaps} through the proxy, {sizes.swaps} stopping the old container first")
    try:
        swapped = swap.measure(sizes.swaps)
    except EngineUnavailable as unavailable:
        print(f"skipped: {unavailable}")
        rows.append(("swap: gaps and time per swap", f"skipped: {unavailable}", "needs podman"))
    else:
        print(swap.report(swapped))
        rows.extend(swap.rows(swapped))
    return rows


def median_of(values: list[float]) -> float:
    from bench.harness import median

    return median(values)


def first_calls(result: fleet.FleetResult) -> int:
    return result.deployments[-1].first_calls


def poll_calls(result: fleet.FleetResult) -> int:
    deployment = result.deployments[-1]
    return round((sum(deployment.calls.values()) - deployment.first_calls) / max(1, deployment.invocations - 1))


def table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| figure | result | target |", "| --- | --- | --- |"]
    lines += [f"| {figure} | {result} | {target} |" for figure, result, target in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="all of berth's benchmarks")
    parser.add_argument("--quick", action="store_true", help="smallest sizes: a smoke run, not a measurement")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = run(QUICK if args.quick else FULL)
    section(f"results ({date.today().isoformat()}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
            f"{time.monotonic() - started:.0f} s)")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
