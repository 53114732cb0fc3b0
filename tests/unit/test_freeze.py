"""A target's freeze (domain/freeze.py): when it is in force, what a REST deploy is told, when a held retry looks
again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.errors import TargetFrozen
from chalicelib.domain.freeze import RETRY_HOLD, Freeze, in_force, refuse_unless_overridden, retry_held_until

T0 = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(hours=2)
BOUNDED = Freeze("release week", "bob", T0, UNTIL)
OPEN = Freeze("incident 42", "carol", T0)


def test_a_freeze_is_in_force_until_its_end_and_an_open_one_always() -> None:
    assert in_force(BOUNDED, UNTIL - timedelta(seconds=1)) == BOUNDED
    assert in_force(BOUNDED, UNTIL) is None
    assert in_force(OPEN, T0 + timedelta(days=400)) == OPEN
    assert in_force(None, T0) is None


def test_a_rest_deploy_is_refused_naming_the_freeze_unless_overridden() -> None:
    with pytest.raises(TargetFrozen) as caught:
        refuse_unless_overridden("web", BOUNDED, None, T0)
    assert caught.value.message == (
        "target 'web' is frozen until 2026-11-27T19:00:00+00:00 by bob (2026-11-27T17:00:00+00:00): release week. "
        'Deploy with "override_freeze": "<why>" (berth deploy --override-freeze WHY) to deploy anyway')
    assert refuse_unless_overridden("web", BOUNDED, "INC-7", T0) == (
        "freeze overridden: INC-7 (frozen by bob: release week)")
    assert refuse_unless_overridden("web", BOUNDED, None, UNTIL) is None
    assert refuse_unless_overridden("web", None, "INC-7", T0) is None


def test_a_held_retry_looks_again_at_the_end_or_a_few_minutes_later() -> None:
    assert retry_held_until(BOUNDED, T0) == UNTIL
    assert retry_held_until(OPEN, T0) == T0 + RETRY_HOLD
    assert retry_held_until(BOUNDED, UNTIL) is None
    assert retry_held_until(None, T0) is None
