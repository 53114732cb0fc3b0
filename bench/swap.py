"""Swaps on a real container engine: the handoff through the local proxy against stop-then-start, in one run.

    python -m bench.swap [--swaps 20]

The engine session of tests/containers (podman behind a `docker` shim, a local registry, busybox images, the proxy
image built from this machine's haproxy) serves one service; `start_container.sh` swaps it between v1 and v2
`--swaps` times while a prober GETs the public port every 50 ms. Then the same for a service that also maps a UDP
port, which the proxy cannot carry, so its swaps stop the old container first: what every swap did before the
handoff. Reported: probes failed, the longest outage the prober saw (last good answer before a failure to the next
good one), and the median seconds per swap of each, as a ratio and a difference within this run. Skipped, with the
reason, where podman cannot run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.harness import median
from tests.containers.support import SUFFIXES, Engine, EngineUnavailable, Prober, Target, engine_session, free_port


@dataclass(frozen=True)
class Swaps:
    """One kind of swap, repeated: what the prober saw and how long each swap took."""

    kind: str
    seconds: list[float]
    probes: int
    failed: int
    longest_outage: float
    exit_codes: list[int]

    @property
    def median_seconds(self) -> float:
        return median(self.seconds)


@dataclass(frozen=True)
class SwapResult:
    handoff: Swaps
    stop_first: Swaps

    @property
    def ratio(self) -> float:
        return self.handoff.median_seconds / self.stop_first.median_seconds

    @property
    def added_seconds(self) -> float:
        return self.handoff.median_seconds - self.stop_first.median_seconds


def run_swaps(engine: Engine, kind: str, count: int, *extra: str) -> Swaps:
    target = Target(name=f"berth-bench-{uuid.uuid4().hex[:8]}", port=free_port())
    args = ("--stop-timeout", "1", *extra)
    try:
        first = engine.run("start_container.sh", *target.deploy_args(engine, "v1", *args))
        if first.returncode != 0:
            raise RuntimeError(f"the first deploy failed: {first.stdout}{first.stderr}")
        seconds, codes = [], []
        with Prober(target.port) as prober:
            time.sleep(0.5)
            for n in range(count):
                started = time.monotonic()
                result = engine.run("start_container.sh", *target.deploy_args(engine, ("v2", "v1")[n % 2], *args))
                seconds.append(time.monotonic() - started)
                codes.append(result.returncode)
            time.sleep(0.5)
        return Swaps(kind, seconds, len(prober.answers), len(prober.failed()), prober.longest_outage(), codes)
    finally:
        engine.remove(target.name, *(target.name + suffix for suffix in SUFFIXES))


def measure(swaps: int) -> SwapResult:
    """Raises EngineUnavailable when podman cannot run here."""
    with tempfile.TemporaryDirectory(prefix="berth-bench-swap-") as work, engine_session(Path(work)) as engine:
        handoff = run_swaps(engine, "handoff through the proxy", swaps)
        stop_first = run_swaps(engine, "stop-then-start", swaps, "--port", f"{free_port()}:9999/udp")
    return SwapResult(handoff, stop_first)


def report(result: SwapResult) -> str:
    lines = [f"{'kind':<28} {'swaps':>5} {'ok':>4} {'probes':>7} {'failed':>7} {'outage':>8} {'median s':>9}"]
    for swaps in (result.handoff, result.stop_first):
        lines.append(f"{swaps.kind:<28} {len(swaps.seconds):>5} {swaps.exit_codes.count(0):>4} {swaps.probes:>7} "
                     f"{swaps.failed:>7} {swaps.longest_outage * 1000:>6.0f}ms {swaps.median_seconds:>9.2f}")
    lines.append(f"handoff against stop-then-start: {result.ratio:.2f}x the time, {result.added_seconds:+.2f} s a swap")
    return "\n".join(lines)


def rows(result: SwapResult) -> list[tuple[str, str, str]]:
    handoff, stop_first = result.handoff, result.stop_first
    return [
        (f"swap: {len(handoff.seconds)} healthy swaps through the proxy, probed every 50 ms",
         f"{handoff.failed} of {handoff.probes} probes failed; longest outage {handoff.longest_outage * 1000:.0f} ms; "
         f"{handoff.exit_codes.count(0)} of {len(handoff.seconds)} swaps exited 0", "0 failed, no outage"),
        (f"swap: the same {len(stop_first.seconds)} swaps stopping the old container first (the earlier scripts)",
         f"{stop_first.failed} of {stop_first.probes} probes failed; longest outage "
         f"{stop_first.longest_outage * 1000:.0f} ms", "(before)"),
        ("swap: median time per swap, handoff against stop-then-start",
         f"{result.ratio:.2f}x ({handoff.median_seconds:.2f} s against {stop_first.median_seconds:.2f} s, "
         f"{result.added_seconds:+.2f} s)", "(ratio)"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gapless swaps against stop-then-start on podman")
    parser.add_argument("--swaps", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        result = measure(args.swaps)
    except EngineUnavailable as unavailable:
        print(f"skipped: {unavailable}")
        return 0
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
