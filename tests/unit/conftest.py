"""Unit tests of the functional core: plain values in, plain values out, no AWS and no mocks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

# The spec from the issue that introduced pipeline UserParameters, verbatim.
EXAMPLE_SPEC: dict[str, Any] = {
    "target": "web-prod",
    "instances": {"tags": {"app": "web", "env": "prod"}},
    "container": {"name": "web", "ports": ["5000:5000"], "env": {"APP_MODE": "production"}},
    "health_check": {"path": "/health", "port": 5000, "timeout_seconds": 60},
    "rollout": {"max_concurrency": "25%", "max_errors": "0"},
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:20240912",
}


@pytest.fixture
def example_spec() -> dict[str, Any]:
    """A fresh copy of the example spec, for a test to break one field of."""
    return copy.deepcopy(EXAMPLE_SPEC)
