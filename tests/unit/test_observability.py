"""Tracing is opt-in, and the X-Ray SDK is not in berth's Lambda package (the runtime has only boto3): turning tracing
on without it must leave berth running untraced, never fail a handler before it reports its result."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from chalicelib import observability


@pytest.fixture
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BERTH_TRACING", "true")
    observability._tracing.cache_clear()
    yield
    observability._tracing.cache_clear()


def test_tracing_without_the_xray_sdk_runs_untraced_and_says_why(tracing_on: None, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    loaded = [module for module in sys.modules if module.startswith(("aws_xray_sdk", "aws_lambda_powertools.tracing"))]
    for name in loaded:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)      # what `import aws_xray_sdk` meets in the package

    with observability.observed("pipeline_job"):
        pass

    assert observability._tracing() is False
    assert "BERTH_TRACING" in capsys.readouterr().out


def test_tracing_off_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_TRACING", raising=False)
    observability._tracing.cache_clear()
    assert observability._tracing() is False
