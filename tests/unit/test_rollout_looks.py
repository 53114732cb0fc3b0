"""When a waiting rollout must next be looked at (domain/rollout.py: next_look), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.rollout import Rollout, RolloutPhase, next_look
from chalicelib.domain.spec import CanarySpec, RolloutSpec

T0 = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
WAVES = [["i-1"], ["i-2", "i-3"]]
CANARY = RolloutSpec(canary=CanarySpec(instances=1, bake_seconds=300), bake_seconds=120)
WATCHED = CANARY.model_copy(update={"alarms": ["web-5xx-high"]})


def baking(wave: int = 1, since: datetime = T0) -> Rollout:
    return Rollout(waves=WAVES, phase=RolloutPhase.BAKING, wave=wave, baking_since=since)


def test_without_alarms_a_bake_is_looked_at_once_at_its_end() -> None:
    assert next_look(CANARY, baking(), T0) == T0 + timedelta(seconds=300)
    assert next_look(CANARY, baking(), T0 + timedelta(seconds=299)) == T0 + timedelta(seconds=300)
    assert next_look(CANARY, baking(wave=2), T0) == T0 + timedelta(seconds=120)   # the final bake


def test_with_alarms_a_bake_is_looked_at_every_whole_minute_and_at_its_end() -> None:
    assert next_look(WATCHED, baking(), T0) == datetime(2026, 11, 27, 10, 1, tzinfo=UTC)
    # Every refresh within the same minute asks for the same look.
    assert next_look(WATCHED, baking(), T0 + timedelta(seconds=29)) == datetime(2026, 11, 27, 10, 1, tzinfo=UTC)
    assert next_look(WATCHED, baking(), T0 + timedelta(seconds=30)) == datetime(2026, 11, 27, 10, 2, tzinfo=UTC)
    # The last look is the bake's end, not the minute after it.
    assert next_look(WATCHED, baking(), T0 + timedelta(seconds=270)) == T0 + timedelta(seconds=300)


def test_a_bake_already_over_is_looked_at_its_end_which_is_already_past() -> None:
    late = T0 + timedelta(seconds=900)
    assert next_look(CANARY, baking(), late) == T0 + timedelta(seconds=300)
    assert next_look(WATCHED, baking(), late) == T0 + timedelta(seconds=300)


def test_a_halted_rollout_is_looked_at_the_next_minute() -> None:
    stopping = Rollout(waves=WAVES, phase=RolloutPhase.STOPPING, stop_reason="alarm")
    assert next_look(CANARY, stopping, T0) == datetime(2026, 11, 27, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("phase", [RolloutPhase.WAVE, RolloutPhase.ROLLING_BACK])
def test_a_command_out_needs_no_look_ssms_event_comes(phase: RolloutPhase) -> None:
    assert next_look(WATCHED, Rollout(waves=WAVES, phase=phase), T0) is None


def test_a_bake_with_no_start_recorded_needs_no_look() -> None:
    assert next_look(WATCHED, Rollout(waves=WAVES, phase=RolloutPhase.BAKING), T0) is None


@pytest.mark.parametrize("phase", [RolloutPhase.DRAINING, RolloutPhase.REGISTERING])
def test_a_batch_out_of_or_back_in_its_target_groups_is_looked_at_every_minute(phase: RolloutPhase) -> None:
    # No event says a target has drained or become healthy: each minute's look reads the target health once.
    waiting = Rollout(waves=WAVES, phase=phase)
    assert next_look(CANARY, waiting, T0) == datetime(2026, 11, 27, 10, 1, tzinfo=UTC)
    assert next_look(CANARY, waiting, T0 + timedelta(seconds=30)) == datetime(2026, 11, 27, 10, 2, tzinfo=UTC)
