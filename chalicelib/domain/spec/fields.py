"""The rules every part of the target spec shares: the strict model base, patterns, plain text and argv checks.

Specs coming in (UserParameters, PUT /targets) meet every rule; specs berth reads back from its own table are
validated with the `STORED` context, and rules added after a record was written must not make it unreadable, so the
rules checked with `admitting` apply only to specs coming in (one-character container names, hybrid ids, ports with
leading zeros, a health check as long as the command, and the size bounds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

# The validation context for specs berth reads back from its own table.
STORED: dict[str, Any] = {"berth_stored": True}
# One argument of a command: any text but NUL (argv cannot hold it), at most as long as an env value.
MAX_ARG = 4096
MAX_ARGS = 64

Arg = Annotated[str, Field(max_length=MAX_ARG)]
Args = Annotated[list[Arg], Field(min_length=1, max_length=MAX_ARGS)]

Item = TypeVar("Item")
Key = TypeVar("Key", bound=Hashable)


class StrictModel(BaseModel):
    # Python's re compiles these patterns lazily and cheaply; pydantic's default Rust engine spends about 100 ms at
    # import building automata for the Unicode classes, most of a cold start.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, regex_engine="python-re")


def admitting(info: ValidationInfo) -> bool:
    """True for a spec coming in, False for one read back from berth's table (`STORED`)."""
    return not (isinstance(info.context, dict) and info.context.get("berth_stored"))


def anchored(pattern: str) -> str:
    r"""The pattern for pydantic's Python `re` engine: `\Z` where `$` would also accept a trailing newline.

    The constants keep `$` so they stay valid JSON Schema (ECMA) patterns for the OpenAPI document.
    """
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern


def utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: not valid Unicode text") from None


def plain_text(value: str, what: str, limit: int = 1024) -> str:
    if len(value) > limit:
        raise ValueError(f"{what}: longer than {limit} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"{what}: control characters (newlines, tabs, escapes) are not allowed")
    utf8(value, what)
    return value


def check_args(args: list[str] | None, what: str) -> list[str] | None:
    if args is None:
        return None
    for index, arg in enumerate(args):
        if "\x00" in arg:
            raise ValueError(f"{what}[{index}]: NUL bytes cannot pass as an argument")
        utf8(arg, f"{what}[{index}]")
    if args[0] == "":
        raise ValueError(f"{what}[0]: the program to run may not be empty")
    return args


def refuse_repeats(items: Iterable[Item], key: Callable[[Item], Key], repeated: Callable[[Item, Key], str]) -> None:
    """Take each item's key in turn (`key` may refuse an item itself) and refuse the first that an earlier item had.

    The items are checked in order, so of two problems the message names the first.
    """
    seen: set[Key] = set()
    for item in items:
        item_key = key(item)
        if item_key in seen:
            raise ValueError(repeated(item, item_key))
        seen.add(item_key)


def json_bytes(value: Any) -> int:
    """The bytes `value` takes as compact UTF-8 JSON, as the spec is stored."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
