"""Fixtures of the functional tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import World
from tests.functional.cli_front import Front, serving


@pytest.fixture
def front(aws: World) -> Iterator[Front]:
    """API Gateway stand-in for the `berth` CLI: http://127.0.0.1:PORT/api/... to the app (cli_front.py)."""
    with serving(aws) as served:
        yield served
