"""What a deployment of a target would do, and what would refuse it, decided without sending anything. Pure.

services/plan.py gathers the facts (the record, the lock, the resolved image, the instances and their SSM status, the
alarms' states) with read-only calls; `refusals` turns them into the list a person reads before deploying: each
refusal names its reason the way the deployment itself would fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .deployment import Deployment, Revision
from .fleet import Fleet
from .release import PlannedRelease
from .rollout import (
    MAX_WAVE,
    AlarmState,
    Rollout,
    alarm_message,
    bake_seconds,
    batch_size,
    firing,
    missing,
    plan_waves,
)
from .spec import RolloutSpec

ONLINE = "Online"


@dataclass(frozen=True)
class Refusal:
    code: str            # TargetBusy, AlarmFiring, AlarmMissing, NoOnlineInstance, ImageUnresolved, NoImage,
                         # ArchitectureMismatch, ScanFindings, ScanPending, ...
    message: str


@dataclass(frozen=True)
class PlannedInstance:
    instance_id: str
    ssm_managed: bool
    ping_status: str | None          # SSM's PingStatus; None when SSM does not manage the instance
    digest: str | None               # what it runs as far as berth knows (domain/fleet.py), if berth knows
    reported_by: str | None          # the deployment that put it there
    behind: bool = False             # not known to run the target's current digest

    @property
    def online(self) -> bool:
        return self.ping_status == ONLINE


@dataclass(frozen=True)
class PlannedWave:
    instances: list[str]
    bake_seconds: int                # watched by the alarms after the wave passed


@dataclass(frozen=True)
class Plan:
    target: str
    revision: Revision | None        # None when the image does not resolve
    current_revision: Revision | None
    instances: list[PlannedInstance]
    rollout: RolloutSpec
    in_waves: bool                   # by instance id in waves, or one SSM command over the whole target
    waves: list[PlannedWave]
    alarms: list[AlarmState]         # each named alarm; a missing one has state "MISSING"
    refusals: list[Refusal]
    target_group_arns: list[str] = field(default_factory=list)   # load_balancer's groups
    release: PlannedRelease | None = None                         # the spec's release task, before any swap


MISSING = "MISSING"


def known_digests(fleet: Fleet, last: Deployment | None) -> dict[str, tuple[str, str | None]]:
    """Each instance's digest as far as berth knows, and the deployment that put it there: from the target's instance
    map, or for a target whose item predates the map, from its last deployment's results."""
    if fleet.instances:
        return {i: (known.digest, known.deployment_id) for i, known in fleet.instances.items() if known.digest}
    return {i: (digest, last.deployment_id) for i, digest in reported_digests(last).items()} if last else {}


def reported_digests(deployment: Deployment | None) -> dict[str, str]:
    """Each instance's digest as the deployment's results report it, a later attempt's over an earlier one's."""
    found: dict[str, str] = {}
    for attempt in deployment.attempts if deployment is not None else []:
        found |= {instance_id: result.digest for instance_id, result in attempt.instances.items() if result.digest}
    return found


def planned_waves(spec: RolloutSpec, instances: Iterable[str], load_balanced: bool = False) -> list[PlannedWave]:
    """The waves of a rollout in waves (domain/rollout.py's planner; batches of max_concurrency when `load_balanced`)
    with each one's bake; otherwise one command over all the instances, rate controlled by max_concurrency."""
    ids = sorted(set(instances))
    if not ids:
        return []
    if not (spec.in_waves or load_balanced):
        return [PlannedWave(ids, 0)]
    waves = plan_waves(ids, spec.canary, batch_size(spec.max_concurrency, len(ids)) if load_balanced else MAX_WAVE)
    return [PlannedWave(wave, bake_seconds(spec, Rollout(waves=waves, wave=number)))
            for number, wave in enumerate(waves, start=1)]


def alarms_with_missing(names: Sequence[str], states: Iterable[AlarmState]) -> list[AlarmState]:
    """Every named alarm in the spec's order: as DescribeAlarms reported it, or MISSING."""
    by_name = {alarm.name: alarm for alarm in states}
    return [by_name.get(name, AlarmState(name, MISSING, "no CloudWatch metric alarm has this name")) for name in names]


def refusals(*, busy_with: str | None, breaker_open: bool, image_problem: str | None,
             instances: Sequence[PlannedInstance], image_code: str = "ImageUnresolved",
             instances_problem: str | None = None,
             alarm_names: Sequence[str] = (), states: Sequence[AlarmState] = ()) -> list[Refusal]:
    found: list[Refusal] = []
    if busy_with is not None:
        found.append(Refusal("TargetBusy", f"the target is locked by running deployment {busy_with}"))
    if breaker_open:
        found.append(Refusal("BreakerOpen", "the circuit breaker is open: automatic deployments are stopped; deploy "
                                            "with reset_breaker (berth deploy --reset-breaker) to close it"))
    if image_problem is not None:
        found.append(Refusal(image_code, image_problem))
    if instances_problem is not None:
        found.append(Refusal("NoOnlineInstance", instances_problem))
    elif not instances:
        found.append(Refusal("NoOnlineInstance", "no running instance matches the target's instances; check the tags "
                                                 "or ids"))
    elif not any(instance.online for instance in instances):
        found.append(Refusal("NoOnlineInstance", f"none of the {len(instances)} instances matched is managed by SSM "
                                                 "and Online"))
    absent = missing(alarm_names, states)
    if absent:
        found.append(Refusal("AlarmMissing", f"no CloudWatch metric alarm is named {', '.join(map(repr, absent))}"))
    fired = firing(states)
    if fired:
        found.append(Refusal("AlarmFiring", alarm_message(fired)))
    return found
