"""Contract tests: the same checks against a fake port (tests/fakes) and the real adapter on moto and localaws, so
the fakes the service tests stand on cannot drift from what the adapters do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def moto_account(aws_env: None) -> Iterator[None]:
    """A fresh emulated account (moto with localaws), without berth's table: each contract sets up what it needs."""
    from moto import mock_aws

    import localaws

    localaws.install()
    with mock_aws():
        yield
