"""Fixtures: every test runs inside a fresh ``mock_aws`` with localaws installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from localaws_testkit import REGION
from moto import mock_aws

import localaws


@pytest.fixture
def aws() -> Iterator[None]:
    localaws.install()
    with mock_aws():
        yield


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def ec2(aws: None) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def codepipeline(aws: None) -> Any:
    return boto3.client("codepipeline", region_name=REGION)


@pytest.fixture
def codedeploy(aws: None) -> Any:
    return boto3.client("codedeploy", region_name=REGION)
