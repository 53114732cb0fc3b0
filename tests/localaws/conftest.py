"""Fixtures: every test runs inside a fresh ``mock_aws`` with localaws installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from localaws_testkit import client
from moto import mock_aws

import localaws


@pytest.fixture
def aws() -> Iterator[None]:
    localaws.install()
    with mock_aws():
        yield


@pytest.fixture
def ssm(aws: None) -> Any:
    return client("ssm")


@pytest.fixture
def ec2(aws: None) -> Any:
    return client("ec2")


@pytest.fixture
def codepipeline(aws: None) -> Any:
    return client("codepipeline")


@pytest.fixture
def codedeploy(aws: None) -> Any:
    return client("codedeploy")
