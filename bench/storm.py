"""Failure storm: N failed SSM commands of N deployments, each status event delivered 5 times in shuffled order.

    python -m bench.storm [--count 1000] [--copies 5]

The N deployments are started through berth's own DeploymentService (one target each, one instance whose pull fails
with exit 21, a transient failure). Every "EC2 Command Status-change Notification" (Failed) is then handed to the
`ssm_command_events` Lambda `copies` times, all copies shuffled together, as an at-least-once EventBridge may.
Exactly N retries must be scheduled: counted by reading the schedules back from the Scheduler API. The embedded AWS
is a localaws server in a child process, so the handler CPU (`time.process_time`) is berth's alone.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.harness import ROOT, Berth, counted_calls, credentials, prepare_account, quiet, spec, stage_env


@dataclass
class StormResult:
    count: int
    copies: int
    seed_seconds: float
    deliveries: int
    errors: int
    retries_scheduled: int
    first_cpu: float
    duplicate_cpu: float
    calls: int

    @property
    def handler_cpu(self) -> float:
        return self.first_cpu + self.duplicate_cpu

    @property
    def events_per_cpu_second(self) -> float:
        return self.deliveries / self.handler_cpu


def seed(count: int, tags: dict[str, str], image: str) -> list[str]:
    """Start `count` deployments, one target each; returns their SSM command ids."""
    from chalicelib import wiring
    from chalicelib.domain.spec import TargetSpec

    with stage_env():
        service = wiring.deployment_service()
        store = wiring.store()
        commands = []
        revision = None
        for n in range(count):
            target = TargetSpec.model_validate(spec(f"storm-{n}", tags, image))
            revision = revision or service.resolve_revision(target, image)
            store.put_target(target, caller="bench")
            deployment = service.start(target, revision, "pipeline", "bench:storm")
            commands.append(str(deployment.attempts[-1].command_id))
        return commands


def scheduled_retries(scheduler: Any) -> list[str]:
    names: list[str] = []
    kwargs: dict[str, Any] = {"GroupName": "default", "NamePrefix": "berth-retry-"}
    while True:
        page = scheduler.list_schedules(**kwargs)
        names += [item["Name"] for item in page.get("Schedules", [])]
        if not page.get("NextToken"):
            return names
        kwargs["NextToken"] = page["NextToken"]


def measure(count: int = 1000, copies: int = 5, seed_value: int = 8) -> StormResult:
    import boto3

    from localaws import InstanceOutcome
    from tools import emulated
    from tools.embedded import EmbeddedAws

    template = json.loads((ROOT / "tests" / "events" / "ssm_command_failed.json").read_text())
    with quiet(), credentials(), EmbeddedAws() as aws, counted_calls() as counter:
        prepare_account()
        tags = {"storm": "yes"}
        emulated.launch(boto3.client("ec2"), 1, tags)
        image, _ = emulated.push_image(boto3.client("ecr"), "web", "v1")
        aws.control.set_default_outcome(InstanceOutcome(status="Failed", response_code=21,
                                                        stderr="net/http: TLS handshake timeout"))
        started = time.perf_counter()
        commands = seed(count, tags, image)
        seed_seconds = time.perf_counter() - started

        events = []
        for number, command_id in enumerate(commands):
            event = json.loads(json.dumps(template))
            event["id"] = f"storm-{number}"
            event["detail"]["command-id"] = command_id
            events += [event] * copies
        random.Random(seed_value).shuffle(events)

        berth = Berth(counter)
        seen: set[str] = set()
        first_cpu = duplicate_cpu = 0.0
        errors = 0
        for event in events:
            command_id = event["detail"]["command-id"]
            try:
                measured = berth.invoke("ssm_command_events", event)
                cpu = measured.cpu
            except Exception:      # EventBridge would deliver it again; counted, and the copies still come
                errors += 1
                continue
            if command_id in seen:
                duplicate_cpu += cpu
            else:
                first_cpu += cpu
                seen.add(command_id)
        retries = scheduled_retries(boto3.client("scheduler"))
        return StormResult(count, copies, seed_seconds, len(events), errors, len(set(retries)), first_cpu,
                           duplicate_cpu, counter.total())


def report(result: StormResult) -> str:
    verdict = "exactly once" if result.retries_scheduled == result.count else "WRONG"
    return "\n".join([
        f"deployments failed: {result.count} (seeded through DeploymentService in {result.seed_seconds:.0f} s)",
        f"events delivered: {result.deliveries} ({result.copies} copies each, shuffled); handler errors: "
        f"{result.errors}",
        f"retries scheduled (Scheduler API): {result.retries_scheduled} ({verdict})",
        f"handler CPU: {result.handler_cpu:.2f} s ({result.first_cpu:.2f} s for first deliveries, "
        f"{result.duplicate_cpu:.2f} s for duplicates); AWS calls: {result.calls}",
        f"events handled per second of handler CPU: {result.events_per_cpu_second:.0f} "
        f"(first {result.count / result.first_cpu:.0f}/s, duplicates "
        f"{(result.deliveries - result.count) / max(result.duplicate_cpu, 1e-9):.0f}/s)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="berth failure-storm benchmark")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args(argv)
    print(report(measure(args.count, args.copies)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
