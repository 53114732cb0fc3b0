"""max_errors across waves, through the pipeline action on the embedded AWS: the error budget is the deployment's, so
the instances that failed in a wave that passed count against the waves after it (SendCommand's MaxErrors is what is
left, and the wave that fails more than that halts the rollout)."""

from __future__ import annotations

from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.functional.test_rollout_waves import canary_params, fleet, run, sent
from tests.reliability.faults import Clock

__all__ = ["fleet"]          # the fixture: four instances on v1, the alarms OK


def failing_on(aws: World, *instance_ids: str) -> None:
    """v2 fails its health check on these instances; everything else succeeds."""
    v2 = aws.push_image("web", "v2", content="v2")        # its digest, which the v2 commands pin
    broken = InstanceOutcome(status="Failed", response_code=30, stdout="berth-step: health\n",
                             stderr="health check failed")

    def hook(instance_id: str, command: dict[str, Any]) -> InstanceOutcome | None:
        return broken if instance_id in instance_ids and v2 in "\n".join(command["Parameters"]["commands"]) else None

    localaws.set_outcome_hook(hook)


@pytest.mark.parametrize(("budget", "second_wave_errors", "outcome"), [("1", "0", "failure"), ("2", "1", "success")])
def test_the_errors_of_a_passed_wave_count_against_the_next(aws: World, fleet: tuple[list[str], Clock], budget: str,
                                                            second_wave_errors: str, outcome: str) -> None:
    instances, clock = fleet
    ordered = sorted(instances)
    failing_on(aws, ordered[0], ordered[2])     # one failure in the canary (2 instances), one in the next wave

    replies = run(aws, clock, f"budget-{budget}", canary_params(aws, max_errors=budget, alarms=None,
                                                                 canary={"instances": 2, "bake_seconds": 60}))

    assert replies[-1].kind == outcome, replies[-1].text
    canary, second = sent(aws)[1:3]
    assert canary["InstanceIds"] == ordered[:2] and canary["MaxErrors"] == budget
    assert second["InstanceIds"] == ordered[2:] and second["MaxErrors"] == second_wave_errors
    if outcome == "failure":
        # MaxErrors 0: SSM stops the wave at its first error (the rest reads Cancelled), and the rollout halts.
        assert "rolled back: wave 2 of 2 failed: " in replies[-1].text and ordered[2] in replies[-1].text
        assert sent(aws)[-1]["InstanceIds"] == ordered        # every instance that may run v2 gets v1 back
