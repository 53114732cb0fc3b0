"""Property-based tests of every event parser and request model, and of the Lambda entry points behind them.

Whatever JSON arrives (arbitrary values, or AWS's own sample events from tests/events/ with keys dropped, types
changed, huge strings or unusual unicode put in), a parser returns its typed object or raises one of berth's named
errors (BerthError), never a KeyError, TypeError or AttributeError. The REST request models are parsed by
`chalicelib.api.handling`, whose contract also lets pydantic's ValidationError through: the one error boundary
(`chalicelib.api.errors.error_response`) turns it into a 400, which is checked here too.

UserParameters (`parse_pipeline_parameters`) and the continuation token (`continuation.decode`) have their
properties in tests/unit/test_spec.py and tests/unit/test_continuation.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from chalice.app import MultiDict
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app import app
from chalicelib.api import handling, models
from chalicelib.api.errors import error_response
from chalicelib.api.route import ApiRoute
from chalicelib.domain.errors import BerthError
from chalicelib.domain.events import (
    CodeDeployEvent,
    LifecycleHookEvent,
    PipelineActionEvent,
    SsmCommandEvent,
    parse_event,
)
from chalicelib.domain.job import PipelineJob, job_id_of, parse_job_event
from chalicelib.domain.retry_payload import RetryPayload
from tests.conftest import World
from tests.events import load_event

FAST = settings(max_examples=150, deadline=None)
# Entry points run berth's handler against moto: fewer examples, and the `aws` fixture is shared by the examples.
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

# JSON as a Lambda receives it: what json.loads can produce, lone surrogates included ("\ud800" parses to one).
TEXT = st.text(st.characters(blacklist_categories=()), max_size=20)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=15)
HUGE = st.integers(1_000, 200_000).map(lambda n: "x" * n) | st.just("\U0001f680" * 50_000)
UNICODE = st.text(st.characters(blacklist_categories=()), min_size=1, max_size=50) | st.sampled_from(
    ["\u202e", "\x00", "\ud800", "\uff44-\uff11\uff12\uff13", "i-0\u200b123", "\uff21\uff50\uff50", "\ufeff", "\n\r\t"])

SAMPLES: dict[str, list[str]] = {
    "job": ["codepipeline_job", "codepipeline_job_continuation", "codepipeline_job_no_user_parameters"],
    "CodeDeployEvent": ["codedeploy_deployment_success", "codedeploy_deployment_failure",
                        "codedeploy_instance_success", "codedeploy_instance_failure"],
    "SsmCommandEvent": ["ssm_command_success", "ssm_command_failed"],
    "PipelineActionEvent": ["codepipeline_action_failed"],
    "LifecycleHookEvent": ["codedeploy_lifecycle_hook"],
}
RETRY_PAYLOADS = [{"kind": "ssm", "deployment_id": "d-20240912101500-1a2b3c4d", "attempt": 2},
                  {"kind": "codedeploy", "deployment_id": "d-ABCDEF123", "attempt": 2, "wait": 1},
                  {"kind": "pipeline", "pipeline": "myPipeline", "stage": "Deploy",
                   "execution_id": "12345678-1234-5678-abcd-12345678abcd",
                   "attempt": 2}]
MODELS: dict[str, type[BaseModel]] = {"CodeDeployEvent": CodeDeployEvent, "SsmCommandEvent": SsmCommandEvent,
                                      "PipelineActionEvent": PipelineActionEvent,
                                      "LifecycleHookEvent": LifecycleHookEvent, "RetryPayload": RetryPayload}


def samples(kind: str) -> list[Any]:
    if kind == "RetryPayload":
        return copy.deepcopy(RETRY_PAYLOADS)
    return [load_event(name) for name in SAMPLES[kind]]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in children:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, originals: list[Any], keep: frozenset[str] = frozenset()) -> Any:
    """A sample with one to four mutations: a key dropped, a value swapped for another type, a huge string or odd
    unicode. Top-level keys in `keep` stay (and stay of their type)."""
    event = copy.deepcopy(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 4))):
        candidates = [p for p in paths(event) if not (len(p) == 1 and p[0] in keep)]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "json", "huge", "unicode", "type"]))
        if action == "drop":
            del parent[key]
        elif action == "json":
            parent[key] = draw(JSON)
        elif action == "huge":
            parent[key] = draw(HUGE)
        elif action == "unicode":
            parent[key] = draw(UNICODE)
        else:
            parent[key] = draw(st.sampled_from([0, -1, 2**70, 1.5, True, None, [], {}, "", [parent[key]],
                                                {"value": parent[key]}, str(parent[key])]))
    return event


def parses_or_refuses(parse: Callable[[], Any]) -> Any:
    """The parser's value, or None when it refused with berth's own error; anything else fails the test."""
    try:
        return parse()
    except BerthError as exc:
        assert exc.message and isinstance(exc.message, str)
        return None


# --- the CodePipeline job event ------------------------------------------------------------------------------
@FAST
@given(st.one_of(JSON, st.dictionaries(st.just("CodePipeline.job"), JSON, min_size=1), mutated(samples("job"))))
def test_job_event_parses_or_is_refused_with_invalid_event(event: Any) -> None:
    job = parses_or_refuses(lambda: parse_job_event(event))
    if job is not None:
        assert isinstance(job, PipelineJob)
        assert job.user_parameters is None or isinstance(job.user_parameters, str)
        assert job.id == job_id_of(event)


# --- the EventBridge events, the hook event, the retry payload -----------------------------------------------
@pytest.mark.parametrize("kind", sorted(MODELS))
@FAST
@given(data=st.data())
def test_every_event_model_parses_or_is_refused_with_invalid_event(kind: str, data: st.DataObject) -> None:
    model = MODELS[kind]
    event = data.draw(st.one_of(JSON, mutated(samples(kind))), label="event")
    parsed = parses_or_refuses(lambda: parse_event(model, event))
    if parsed is not None:
        assert isinstance(parsed, model)
        if isinstance(parsed, CodeDeployEvent):
            assert isinstance(parsed.is_instance_event, bool)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_unmutated_samples_parse(kind: str) -> None:
    for event in samples(kind):
        assert isinstance(parse_event(MODELS[kind], event), MODELS[kind])


# --- the REST request models, through chalicelib.api.handling ------------------------------------------------
BODY_MODELS = ["TargetSpecBody", "RedeployRequest", "RollbackRequest", "CancelRequest"]
VALID_BODIES: list[Any] = [
    {"instances": {"tags": {"app": "web"}}, "container": {"name": "web", "ports": ["5000:5000"], "env": {"A": "b"}},
     "health_check": {"path": "/health", "port": 5000}, "rollout": {"max_concurrency": "25%", "max_errors": "0"},
     "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:20240912"},
    {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:20240913", "reason": "INC-42", "reset_breaker": True},
    {"to": "d-20240912101500-1a2b3c4d", "reason": "back", "reset_breaker": False},
    {"reason": "stop it"},
]
BODIES = st.one_of(
    JSON.map(lambda value: json.dumps(value).encode()),
    mutated(VALID_BODIES).map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
)


def fake_request(raw: bytes = b"", headers: dict[str, str] | None = None,
                 query: dict[str, list[str]] | None = None) -> Any:
    return SimpleNamespace(raw_body=raw, headers=headers or {"content-type": "application/json"},
                           query_params=MultiDict(query) if query else None, context={})


def parses_or_is_a_4xx(parse: Callable[[], BaseModel], model: type[BaseModel]) -> None:
    try:
        assert isinstance(parse(), model)
    except (BerthError, ValidationError) as exc:
        assert 400 <= error_response(exc).status_code < 500


@pytest.mark.parametrize("name", BODY_MODELS)
@FAST
@given(raw=BODIES, content_type=st.sampled_from(["application/json", "application/merge-patch+json", "text/plain"]))
def test_every_request_body_parses_or_is_a_4xx(name: str, raw: bytes, content_type: str) -> None:
    route = ApiRoute("POST", "/x", "x", "x", "TargetView", body=name, body_required=name == "TargetSpecBody")
    model = getattr(models, name)
    parses_or_is_a_4xx(lambda: handling._body(route, fake_request(raw, {"content-type": content_type})), model)


@FAST
@given(body=st.one_of(JSON, mutated(VALID_BODIES[:1])), name=st.text(max_size=70) | st.just("web"))
def test_target_spec_body_names_its_target_or_is_a_4xx(body: Any, name: str) -> None:
    if not isinstance(body, dict):
        return
    try:
        spec = models.TargetSpecBody.model_validate(body).spec_for(name)
        assert spec.target == name
    except (BerthError, ValidationError) as exc:
        assert 400 <= error_response(exc).status_code < 500


@FAST
@given(query=st.dictionaries(st.sampled_from(["limit", "next", "other"]) | TEXT, st.lists(TEXT, min_size=1,
                                                                                        max_size=3), max_size=3))
def test_history_query_parses_or_is_a_4xx(query: dict[str, list[str]]) -> None:
    route = ApiRoute("GET", "/x", "x", "x", "HistoryView", query="HistoryQuery")
    parses_or_is_a_4xx(lambda: handling._query(route, fake_request(query=query)), models.HistoryQuery)


# --- the Lambda entry points, under the emulated account ------------------------------------------------------
# EventBridge always sends these nine keys; chalice's CloudWatchEvent reads them before berth's handler runs.
ENVELOPE = frozenset({"version", "account", "region", "detail", "detail-type", "source", "time", "id", "resources"})
RULE_FUNCTIONS = {"codedeploy_events": "CodeDeployEvent", "ssm_command_events": "SsmCommandEvent",
                  "pipeline_action_failed": "PipelineActionEvent"}


def with_envelope(event: Any, original: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge delivery whose detail (and anything beyond the envelope) is arbitrary."""
    body = dict(event) if isinstance(event, dict) else {"detail": event}
    for key in ENVELOPE:
        body[key] = body.get(key, original[key])
    return body


def returns_or_refuses(function: str, event: Any) -> None:
    try:
        with Client(app, stage_name="test") as client:
            reply = client.lambda_.invoke(function, event).payload
    except BerthError:
        return
    assert isinstance(reply, dict)


@pytest.mark.parametrize("function", sorted(RULE_FUNCTIONS))
@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_eventbridge_functions_return_or_raise_berth_errors(aws: World, function: str, data: st.DataObject) -> None:
    originals = samples(RULE_FUNCTIONS[function])
    event = data.draw(st.one_of(
        st.tuples(JSON, st.sampled_from(originals)).map(lambda pair: with_envelope(pair[0], pair[1])),
        mutated(originals, keep=ENVELOPE)), label="event")
    returns_or_refuses(function, event)


@pytest.mark.parametrize("function, kind", [("retry_deployment", "RetryPayload"),
                                            ("codedeploy_hook", "LifecycleHookEvent")])
@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_direct_functions_return_or_raise_berth_errors(aws: World, function: str, kind: str,
                                                       data: st.DataObject) -> None:
    event = data.draw(st.one_of(JSON, mutated(samples(kind))), label="event")
    returns_or_refuses(function, event)


@pytest.mark.xfail(strict=True, raises=(KeyError, TypeError, AttributeError), reason=(
    "limitation: chalice's CloudWatchEvent wrapper indexes the EventBridge envelope (version, account, ... resources) "
    "before berth's handler runs, so JSON without it raises KeyError/TypeError in chalice; EventBridge always sends "
    "the envelope, so only a hand-made invocation gets here"))
@pytest.mark.parametrize("function", sorted(RULE_FUNCTIONS))
def test_eventbridge_functions_without_the_envelope(aws: World, function: str) -> None:
    returns_or_refuses(function, {"detail": {}})
