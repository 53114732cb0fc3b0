"""A rollout in waves: the plan, the bake clock, the alarms' verdict and what a rollback must cover. Pure.

With `rollout.canary` or `rollout.alarms` a deployment is sent in waves by instance id rather than as one command over
the whole target: first the canary (the first N of the sorted instance ids), then the rest in waves of at most 50
(SendCommand takes at most 50 InstanceIds), each with the spec's MaxConcurrency. `max_errors` is the deployment's
budget: each wave's MaxErrors is what the waves before it left of it (wave_max_errors). After the canary wave
comes its bake, after the last wave the final bake: nothing sleeps, each continuation reads the alarms and looks at the
clock until the bake's seconds have passed since the wave passed. The phases (`Rollout.phase`) of an IN_PROGRESS
deployment:

    WAVE (a wave's command out) --wave_passed--> BAKING --wave_sent--> WAVE ... BAKING (last wave) --succeeded-->
    WAVE | BAKING --rollout_halted--> STOPPING (an alarm fired or a wave failed; a running command is cancelled and
    its results read once it is over) --rollback_sent--> ROLLING_BACK (the previous digest, one command, to the
    instances that got the new one) --rolled_back--> ROLLED_BACK

With `load_balancer` the waves are batches of at most max_concurrency instances, each drained out of its target groups
before its swap and healthy in them again before the next (domain/draining.py):

    DRAINING (deregistered) --wave_sent--> WAVE --batch_swapped--> REGISTERING --batch_healthy--> BAKING ...
    DRAINING | REGISTERING --rollout_halted--> STOPPING (the batch is registered again before anything else)

The transitions themselves are in transitions/waves.py; the services act on what these functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from .deployment import Attempt
    from .spec import CanarySpec, RolloutSpec, TargetSpec

MAX_WAVE = 50                      # SendCommand: at most 50 InstanceIds a call
MAX_ALARMS_PER_CALL = 100          # DescribeAlarms: at most 100 AlarmNames a call
ALARM = "ALARM"
# Invocation statuses that say the instance never started the command: it still runs what it ran before.
NOT_STARTED = frozenset({"NeverRan", "Pending", "Delayed", "Undeliverable", "DeliveryTimedOut", "InvalidPlatform",
                         "AccessDenied"})


class RolloutPhase(StrEnum):
    WAVE = "WAVE"                  # a wave's command is out
    BAKING = "BAKING"              # the wave passed; the alarms are watched until its bake is over
    STOPPING = "STOPPING"          # halted: the wave's command (cancelled) must be over before anything else is sent
    ROLLING_BACK = "ROLLING_BACK"  # the previous digest is out to the instances that got the new one
    DRAINING = "DRAINING"          # the batch is deregistered from its target groups; its connections drain
    REGISTERING = "REGISTERING"    # the swapped batch is registered again; it must become healthy in every group


class Rollout(BaseModel):
    """The waves of a deployment (instance ids, planned once before the first is sent) and where they stand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    waves: list[list[str]]
    phase: RolloutPhase = RolloutPhase.WAVE
    wave: int = 1                          # the wave out or baking, from 1
    baking_since: datetime | None = None   # when the wave passed
    stop_reason: str | None = None         # why it halted: the alarm and its reason, or the failed instances
    # With a load balancer (domain/draining.py):
    out_of_groups: bool = False            # the batch is (or may be) deregistered: it is registered before any end
    elb_done_at: datetime | None = None    # when the phase's DeregisterTargets / RegisterTargets was answered
    drain_seconds: int = 0                 # the groups' longest deregistration delay, read when deregistering
    healthy_within: int = 0                # seconds the registered batch has to become healthy in every group
    in_place: bool = False                 # the wave is swapped without deregistering (see draining.in_place_groups)

    @property
    def last_wave(self) -> bool:
        return self.wave >= len(self.waves)

    def describe(self) -> str:
        return f"wave {self.wave} of {len(self.waves)}"

    def label(self) -> str:
        """Where the rollout stands, for a progress line."""
        if self.phase == RolloutPhase.ROLLING_BACK:
            return "rolling back"
        if self.phase in (RolloutPhase.DRAINING, RolloutPhase.REGISTERING):
            return f"{self.describe()}, {self.phase.value.lower()}"
        return f"{self.describe()}, stopping" if self.phase == RolloutPhase.STOPPING else self.describe()


def canary_count(instances: int | str, fleet: int) -> int:
    """The canary wave's size: a count, or a percent of the fleet rounded down; at least one, at most the fleet."""
    count = fleet * int(instances[:-1]) // 100 if isinstance(instances, str) else instances
    return max(1, min(count, fleet))


def batch_size(max_concurrency: str, fleet: int) -> int:
    """A batch behind a load balancer: max_concurrency resolved against the fleet ("25%" of 8 is 2), at least one, at
    most MAX_WAVE."""
    count = fleet * int(max_concurrency[:-1]) // 100 if max_concurrency.endswith("%") else int(max_concurrency)
    return max(1, min(count, MAX_WAVE))


def plan_waves(instances: Iterable[str], canary: CanarySpec | None, batch: int = MAX_WAVE) -> list[list[str]]:
    """The waves, from the sorted instance ids: the canary first (when there is one), then the rest, `batch` a wave
    (at most 50)."""
    ordered = sorted(set(instances))
    first = canary_count(canary.instances, len(ordered)) if canary is not None and ordered else 0
    waves = [ordered[:first]] if first else []
    rest = ordered[first:]
    size = max(1, min(batch, MAX_WAVE))
    return waves + [rest[start:start + size] for start in range(0, len(rest), size)]


def plan_for(spec: TargetSpec, instances: Iterable[str]) -> list[list[str]]:
    """The waves of a target's rollout: batches of max_concurrency behind a load balancer, otherwise 50 a wave."""
    ordered = sorted(set(instances))
    if spec.load_balancer is None:
        return plan_waves(ordered, spec.rollout.canary)
    return plan_waves(ordered, spec.rollout.canary, batch_size(spec.rollout.max_concurrency, len(ordered)))


def bake_seconds(spec: RolloutSpec, rollout: Rollout) -> int:
    """How long the wave that just passed bakes: the canary's bake after the canary wave, the final bake after the
    last (both, whichever is longer, when the canary is the whole fleet), none between the other waves."""
    canary = spec.canary.bake_seconds if spec.canary is not None and rollout.wave == 1 else 0
    return max(canary, spec.bake_seconds) if rollout.last_wave else canary


def bake_left(spec: RolloutSpec, rollout: Rollout, now: datetime) -> int:
    """Seconds of the bake still to go at `now` (0: it is over)."""
    if rollout.baking_since is None:
        return 0
    elapsed = (now - rollout.baking_since).total_seconds()
    return max(0, int(bake_seconds(spec, rollout) - elapsed + 0.999))


def error_budget(spec: RolloutSpec, rollout: Rollout) -> int:
    """The deployment's error budget in instances: `max_errors` as a count, or as a percent of every instance of every
    wave, rounded down."""
    if spec.max_errors.endswith("%"):
        return sum(len(wave) for wave in rollout.waves) * int(spec.max_errors[:-1]) // 100
    return int(spec.max_errors)


def wave_max_errors(spec: RolloutSpec, rollout: Rollout | None, attempts: Sequence[Attempt]) -> str:
    """MaxErrors of the last attempt's command, and the budget its results are judged by.

    For a wave: what is left of the deployment's error budget once the instances that failed in the waves before it
    (which passed within the budget) are counted, so the budget is the deployment's, not each wave's. The wave that
    fails more than is left halts the rollout. A plain attempt, and a rollback, keep the spec's `max_errors`."""
    current = attempts[-1] if attempts else None
    if rollout is None or current is None or current.wave is None:
        return spec.max_errors
    spent = sum(1 for attempt in attempts if attempt.wave is not None and attempt.wave < current.wave
                for result in attempt.instances.values() if not result.succeeded)
    return str(max(0, error_budget(spec, rollout) - spent))


def attempt_rollout(spec: RolloutSpec, rollout: Rollout | None, attempts: Sequence[Attempt]) -> RolloutSpec:
    """The rollout settings of the last attempt's command: the spec's, with a wave's MaxErrors (wave_max_errors)."""
    max_errors = wave_max_errors(spec, rollout, attempts)
    return spec if max_errors == spec.max_errors else spec.model_copy(update={"max_errors": max_errors})


@dataclass(frozen=True)
class AlarmState:
    """One alarm as DescribeAlarms reports it."""

    name: str
    state: str                 # OK, ALARM or INSUFFICIENT_DATA
    reason: str = ""


def firing(states: Iterable[AlarmState]) -> list[AlarmState]:
    """The alarms in ALARM, by name. INSUFFICIENT_DATA does not stop a rollout: a quiet service sends no data."""
    return sorted((alarm for alarm in states if alarm.state == ALARM), key=lambda alarm: alarm.name)


def missing(names: Sequence[str], states: Iterable[AlarmState]) -> list[str]:
    """The alarm names DescribeAlarms did not return: an alarm that does not exist can never stop a rollout."""
    found = {alarm.name for alarm in states}
    return sorted(name for name in names if name not in found)


def alarm_message(fired: Sequence[AlarmState]) -> str:
    """Which alarms are in ALARM and why, as CloudWatch says (each reason cut to 300 characters)."""
    return "; ".join(f"alarm {alarm.name!r} is in ALARM: {alarm.reason[:300] or '(no reason given)'}"
                     for alarm in fired)


def received_new_revision(attempts: Iterable[Attempt]) -> list[str]:
    """The instances a rollback must cover: every instance of a wave sent that may have started the new revision.

    A wave that passed on SSM's counts alone kept no per-instance results: all its instances got it. Otherwise an
    instance counts unless its result says it never started the command; one without a result (the command may have
    reached it) counts too: sending the previous digest to an instance that already runs it is harmless, leaving one
    on the new revision is not."""
    received: set[str] = set()
    for attempt in attempts:
        if attempt.wave is None:
            continue
        for instance_id in attempt.expected_instances:
            result = attempt.instances.get(instance_id)
            if result is None or result.status not in NOT_STARTED:
                received.add(instance_id)
    return sorted(received)


# Looking again while nothing else will ------------------------------------------------------------------------------
# A pipeline's rollout is refreshed by the job's continuations (every ~30 s). A rollout started through the REST API
# has no job: SSM's command event refreshes it when a wave's command (or the rollback's) is over, but nothing comes
# during a bake, nor while a cancelled wave winds down. For those phases berth schedules one EventBridge Scheduler
# look (services/looks.py) at the moment returned here.
# With alarms, a bake is looked at every minute: Scheduler's one-time schedules resolve to the minute (berth keeps
# them at least 60 s ahead), and a CloudWatch alarm evaluates its metric over periods of a minute or more, so looking
# more often would not halt a rollout sooner, while looking less often leaves a bad revision serving longer.
LOOK_EVERY_SECONDS = 60


def _next_minute(now: datetime) -> datetime:
    """The first whole minute after `now`: every look of a phase falls on this grid (or on the bake's end), so two
    refreshes within the same minute ask for the same look, and its schedule's name says so."""
    return now.replace(second=0, microsecond=0) + timedelta(seconds=LOOK_EVERY_SECONDS)


def next_look(spec: RolloutSpec, rollout: Rollout, now: datetime) -> datetime | None:
    """When a rollout waiting in its phase must next be looked at, or None when an event will come on its own.

    BAKING: the bake's end; with alarms, also every minute until then (the next whole minute), so an alarm during a
    long bake halts it promptly. A bake already over (a late refresh) is looked at as soon as Scheduler can.
    STOPPING: soon (the next whole minute): the cancelled command is over within moments, and SSM's event for it may
    have come before the halt was saved. DRAINING and REGISTERING: the next whole minute, for as long as they last:
    no event says a target finished draining or became healthy. WAVE and ROLLING_BACK: None, SSM's command event comes
    when the command is over. A phase added later joins here with its own moment."""
    if rollout.phase == RolloutPhase.BAKING and rollout.baking_since is not None:
        end = rollout.baking_since + timedelta(seconds=bake_seconds(spec, rollout))
        return min(end, _next_minute(now)) if spec.alarms and end > now else end
    if rollout.phase in (RolloutPhase.STOPPING, RolloutPhase.DRAINING, RolloutPhase.REGISTERING):
        return _next_minute(now)
    return None
