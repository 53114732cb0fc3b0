"""Parsing a spec as the pipeline action's UserParameters, and the message of a refusal: shared by the spec tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.spec import parse_pipeline_parameters


def parse(data: Any) -> Any:
    return parse_pipeline_parameters(json.dumps(data))


def error_of(data: Any) -> str:
    with pytest.raises(InvalidRevision) as caught:
        parse(data)
    return caught.value.message
