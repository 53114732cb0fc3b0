"""The continuation token: small, secret-free JSON that only berth writes and only berth reads back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.continuation import MAX_SINCE, MAX_TOKEN, Following, Token, WaitingForLock, decode, encode
from chalicelib.domain.errors import InvalidEvent


@pytest.mark.parametrize(("token", "text"), [
    (Following("d-20240912-0001"), '{"v":1,"d":"d-20240912-0001"}'),
    (WaitingForLock("web-prod", 1726142400), '{"v":1,"w":"web-prod","s":1726142400}'),
    (WaitingForLock("t", 0), '{"v":1,"w":"t","s":0}'),
])
def test_encode_is_compact_json(token: Token, text: str) -> None:
    assert encode(token) == text
    assert decode(text) == token


_IDS = st.from_regex(r"d-[0-9A-Za-z][0-9A-Za-z-]{0,62}", fullmatch=True)
_TARGETS = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", fullmatch=True)


@given(st.one_of(st.builds(Following, _IDS),
                 st.builds(WaitingForLock, _TARGETS, st.integers(min_value=0, max_value=MAX_SINCE))))
@settings(max_examples=300, deadline=None)
def test_round_trip(token: Token) -> None:
    text = encode(token)
    assert len(text) <= MAX_TOKEN
    assert decode(text) == token


def test_a_typical_token_is_far_under_the_limit() -> None:
    assert len(encode(Following("d-01J7ZK3W6Y5V8Q2N4M1P0R9T8S"))) < 100
    assert len(encode(WaitingForLock("x" * 63, 2**40))) < 150


def test_a_token_too_long_for_codepipeline_is_refused_when_written() -> None:
    with pytest.raises(ValueError, match="longer than CodePipeline allows"):
        encode(Following("d" * MAX_TOKEN))


@pytest.mark.parametrize("text", [
    "", "garbage", "{", "null", "1", '"d-1"', "[]", '["v", 1]', "{}",
    '{"d": "d-1"}', '{"v": 2, "d": "d-1"}', '{"v": "1", "d": "d-1"}', '{"v": 1}', '{"v": 1, "d": 5}',
    '{"v": 1, "d": null}', '{"v": 1, "w": "t"}', '{"v": 1, "w": "t", "s": "1726142400"}',
    '{"v": 1, "w": "t", "s": 1.5}', '{"v": 1, "w": 5, "s": 1}', '{"v": 1, "s": 1}',
    "some-input-such-as-a-URL", "eyJ2IjoxLCJkIjoiZC0xIn0=",
    # forged or damaged: numbers out of range or of the wrong kind, values no berth token holds, extra keys
    '{"v": 1, "w": "t", "s": 1e400}', '{"v": 1, "w": "t", "s": -1}', '{"v": 1, "w": "t", "s": 1e3}',
    '{"v": 1, "w": "t", "s": ' + "9" * 5000 + "}", '{"v": 1, "w": "t", "s": ' + "9" * 400 + "}",
    '{"v": 1, "w": "t", "s": NaN}', '{"v": 1, "w": "t", "s": Infinity}', '{"v": 1, "w": "t", "s": true}',
    '{"v": true, "d": "d-1"}', '{"v": 1.0, "d": "d-1"}', '{"v": ' + "1" * 5000 + ', "d": "d-1"}',
    '{"v": 1, "d": "d-1", "x": 1}', '{"v": 1, "d": "d-1", "w": "t", "s": 1}', '{"v": 1, "d": ""}',
    '{"v": 1, "d": "../../etc"}', '{"v": 1, "d": "d-1\\n"}', '{"v": 1, "d": "' + "d" * 2000 + '"}',
    '{"v": 1, "w": "-t", "s": 1}', '{"v": 1, "w": "t t", "s": 1}', '{"v": 1, "d": "d-\\u0000"}',
    '{"v": 1, "d": "d-1", "d": "d-2"}', " " * 3000 + '{"v": 1, "d": "d-1"}',
])
def test_garbage_tokens_are_invalid_events(text: str) -> None:
    with pytest.raises(InvalidEvent, match="not one berth wrote"):
        decode(text)


@given(st.one_of(st.text(max_size=100), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["v", "d", "w", "s", "x"]), c, max_size=4),
    max_leaves=10).map(json.dumps)))
@settings(max_examples=400, deadline=None)
def test_arbitrary_tokens_raise_nothing_but_invalid_event(text: str) -> None:
    try:
        token = decode(text)
    except InvalidEvent:
        return
    assert isinstance(token, (Following, WaitingForLock))


def test_a_deeply_nested_token_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent):
        decode("[" * 2000)
    with pytest.raises(InvalidEvent):
        decode("[" * 100_000)


def test_a_token_berth_would_not_write_is_refused_when_written() -> None:
    with pytest.raises(ValueError, match="not a token berth writes"):
        encode(Following("not a deployment id"))
    with pytest.raises(ValueError, match="not a token berth writes"):
        encode(WaitingForLock("web", MAX_SINCE + 1))
