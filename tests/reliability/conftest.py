"""Fixtures of the fault-injection tests."""

from __future__ import annotations

import pytest

from tests.reliability.faults import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)
