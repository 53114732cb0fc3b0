"""SendCommand has no idempotency token: each try's Comment is berth's, unique per deployment, attempt and try."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.deployment import Attempt, command_comment, send_number

DEPLOYMENT = "d-20261127101049-e67ba9aa"


def test_the_first_try_keeps_the_comment_berth_always_gave() -> None:
    assert command_comment(DEPLOYMENT, 2) == command_comment(DEPLOYMENT, 2, 1) == f"berth {DEPLOYMENT} attempt 2"
    assert command_comment(DEPLOYMENT, 2, 3) == f"berth {DEPLOYMENT} attempt 2 send 3"


@given(st.integers(min_value=1, max_value=99), st.integers(min_value=1, max_value=99))
def test_every_try_is_told_apart_and_fits_ssms_comment(attempt: int, send: int) -> None:
    comment = command_comment(DEPLOYMENT, attempt, send)
    assert len(comment) <= 100
    assert send_number(comment, DEPLOYMENT, attempt) == send
    assert send_number(comment, DEPLOYMENT, attempt + 1) is None
    assert send_number(comment, "d-20261127101049-e67ba9ab", attempt) is None


def test_other_comments_are_not_an_attempts() -> None:
    for comment in ("", f"berth {DEPLOYMENT} attempt 1", f"berth {DEPLOYMENT} attempt 12",
                    f"berth {DEPLOYMENT} attempt 2 send x", f"berth {DEPLOYMENT} attempt 2 send ", "berth remediation"):
        assert send_number(comment, DEPLOYMENT, 2) is None, comment


def test_an_attempt_recorded_before_tries_were_counted_reads_as_sent_at_its_start() -> None:
    started = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    old = Attempt.model_validate({"number": 1, "started_at": started.isoformat()})
    assert old.sends == 0 and old.last_send_at == started
