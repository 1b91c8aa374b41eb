"""JSON encoding of outputs and stored data: the bytes ``json.dumps`` would write, at orjson's speed.

``json.dumps`` with ``indent`` runs its pure-Python encoder (CPython 3.11 has no C path for it): at a million
accounts the JSON outputs alone took minutes. orjson writes the same text for every value our model converts
to (``to_jsonable``): the same string escapes, key order, separators and two-space indent. The one difference:
floats below 1e-4 in magnitude come out as ``0.00001`` where ``json.dumps`` writes ``1e-05``, the same
number. Integers beyond 64 bits, which orjson refuses, go through ``json`` as before.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from auditor.model import to_jsonable


def dumps(value: Any, *, indent: bool = False, sort_keys: bool = False) -> bytes:
    """``json.dumps(to_jsonable(value), ensure_ascii=False, ...)`` as UTF-8: indented by two spaces, or with
    no spaces at all (``separators=(",", ":")``)."""
    plain = to_jsonable(value)
    option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(plain, option=option)
    except orjson.JSONEncodeError:
        text = json.dumps(plain, ensure_ascii=False, sort_keys=sort_keys,
                          **({"indent": 2} if indent else {"separators": (",", ":")}))
        return text.encode("utf-8")


def dumps_streamed(document: dict[str, Any], lists: dict[str, Iterable[Any]], *, sort_keys: bool = False,
                   batch: int = 256) -> Iterator[bytes]:
    """``dumps(document | {key: list(items) for key, items in lists.items()}, indent=True, sort_keys=...)``, the
    same bytes, in chunks: no list of ``lists`` (top-level keys) is ever whole in memory, its items converted
    ``batch`` at a time.

    The document is written once with a random token in each list's place (no value from a directory can guess
    it) and cut there; each item is indented as a member of a list two levels deep."""
    tokens = {key: secrets.token_hex(16) for key in lists}
    text = dumps({**document, **tokens}, indent=True, sort_keys=sort_keys)
    places = sorted((text.index(f'"{token}"'.encode()), key) for key, token in tokens.items())
    done = 0
    for place, key in places:
        yield text[done:place]
        yield from _list_items(lists[key], sort_keys, batch)
        done = place + len(tokens[key]) + 2
    yield text[done:]


def _list_items(items: Iterable[Any], sort_keys: bool, batch: int) -> Iterator[bytes]:
    pending: list[bytes] = []
    written = False
    for item in items:
        pending.append(b"\n    " + dumps(item, indent=True, sort_keys=sort_keys).replace(b"\n", b"\n    "))
        if len(pending) >= batch:
            yield (b"," if written else b"[") + b",".join(pending)
            written, pending = True, []
    if pending:
        yield (b"," if written else b"[") + b",".join(pending)
        written = True
    yield b"\n  ]" if written else b"[]"


def loads(data: str | bytes) -> Any:
    """Parse JSON (``ValueError`` when it is not)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
