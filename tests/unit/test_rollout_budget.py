"""max_errors across waves (domain/rollout.py: error_budget, wave_max_errors), pure: the budget is the deployment's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.deployment import Attempt, InstanceResult
from chalicelib.domain.rollout import Rollout, error_budget, wave_max_errors
from chalicelib.domain.spec import CanarySpec, RolloutSpec

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
IDS = [f"i-{n:017x}" for n in range(10)]
WAVES = Rollout(waves=[IDS[:2], IDS[2:6], IDS[6:]])


def wave(number: int, failed: int = 0, ran: bool = True) -> Attempt:
    instances = WAVES.waves[number - 1]
    results = {instance_id: InstanceResult(instance_id=instance_id, status="Failed" if index < failed else "Success",
                                           response_code=30 if index < failed else 0)
               for index, instance_id in enumerate(instances)} if ran else {}
    return Attempt(number=number, started_at=T0, expected_instances=instances, instances=results, wave=number)


def spec(max_errors: str) -> RolloutSpec:
    return RolloutSpec(max_errors=max_errors, canary=CanarySpec(instances=2))


@pytest.mark.parametrize(("max_errors", "expected"), [("0", 0), ("3", 3), ("10%", 1), ("25%", 2), ("9%", 0),
                                                      ("100%", 10)])
def test_the_budget_is_a_count_or_a_percent_of_the_whole_fleet(max_errors: str, expected: int) -> None:
    assert error_budget(spec(max_errors), WAVES) == expected


def test_the_first_wave_gets_the_whole_budget() -> None:
    assert wave_max_errors(spec("3"), WAVES, [wave(1, ran=False)]) == "3"
    assert wave_max_errors(spec("30%"), WAVES, [wave(1, ran=False)]) == "3"


def test_errors_of_the_waves_before_count_against_the_next() -> None:
    assert wave_max_errors(spec("3"), WAVES, [wave(1, failed=1), wave(2, ran=False)]) == "2"
    assert wave_max_errors(spec("3"), WAVES, [wave(1, failed=1), wave(2, failed=2), wave(3, ran=False)]) == "0"
    # The wave out does not count against itself: its own results are judged by what the others left.
    assert wave_max_errors(spec("3"), WAVES, [wave(1, failed=1), wave(2, failed=2)]) == "2"


def test_a_spent_budget_never_goes_below_zero() -> None:
    assert wave_max_errors(spec("1"), WAVES, [wave(1, failed=2), wave(2, ran=False)]) == "0"


def test_a_plain_attempt_and_a_rollback_keep_the_specs_max_errors() -> None:
    rollback = Attempt(number=3, started_at=T0, expected_instances=IDS[:6], image="web@sha256:" + "a" * 64)
    assert wave_max_errors(spec("25%"), WAVES, [wave(1, failed=1), wave(2, failed=1), rollback]) == "25%"
    plain = Attempt(number=1, started_at=T0, expected_instances=IDS)
    assert wave_max_errors(spec("25%"), None, [plain]) == "25%"
    assert wave_max_errors(spec("25%"), WAVES, []) == "25%"
