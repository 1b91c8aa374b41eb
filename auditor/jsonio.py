"""JSON encoding of outputs and stored data: the bytes ``json.dumps`` would write, at orjson's speed.

``json.dumps`` with ``indent`` runs its pure-Python encoder (CPython 3.11 has no C path for it): at a million
accounts the JSON outputs alone took minutes. orjson writes the same text for every value our model converts
to (``to_jsonable``): the same string escapes, key order, separators and two-space indent. The one difference:
floats below 1e-4 in magnitude come out as ``0.00001`` where ``json.dumps`` writes ``1e-05``, the same
number. Integers beyond 64 bits, which orjson refuses, go through ``json`` as before.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import orjson

from auditor.compact import PackedStrings, json_value
from auditor.model import to_jsonable


def dumps(value: Any, *, indent: bool = False, sort_keys: bool = False) -> bytes:
    """``json.dumps(to_jsonable(value), ensure_ascii=False, ...)`` as UTF-8: indented by two spaces, or with
    no spaces at all (``separators=(",", ":")``).

    orjson walks the model itself (dataclasses in field order without their private fields, enums by value,
    times in UTC with a ``Z``, as ``to_iso`` writes them: the model's times are UTC, see ``auditor.timeconv``),
    handing back only durations: at a million accounts the Python walk was a third of the run, and a Python call
    for each time another tenth. Sorted, each dataclass is handed back as a dict of its fields (orjson sorts a
    dict's keys but not a dataclass's fields) instead of its text being written, read back and written again
    sorted: an AD account indented and sorted 13.6 us -> 9.4 us."""
    option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        if sort_keys:
            data = orjson.dumps(value, default=_fields_sorted, option=option | _NATIVE | _AS_DICTS)
        else:
            data = orjson.dumps(value, default=_unpacked if indent else _packed, option=option | _NATIVE)
        # Copied to an exact-size object: orjson leaves its output in the buffer it grew, 4 KB for the smallest
        # value and 16 MB for half a megabyte, and a list of 100,000 small results held 400 MB.
        return bytes(memoryview(data))
    except orjson.JSONEncodeError:
        text = json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=sort_keys,
                          **({"indent": 2} if indent else {"separators": (",", ":")}))
        return text.encode("utf-8")


_NATIVE = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def _packed(value: Any) -> Any:
    """What orjson hands back (a duration, a compact mapping), converted as ``to_jsonable`` converts it; a
    mapping of packed strings as its own JSON text (``auditor.compact``): two an account, tested first."""
    if type(value) is PackedStrings:
        return value.json_value()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return json_value(value)


_AS_DICTS = orjson.OPT_PASSTHROUGH_DATACLASS


_FieldReader = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]
_DATACLASS_FIELDS: dict[type, _FieldReader | None] = {}  # by type: its fields and a reader of them, or None


def _field_reader(kind: type) -> _FieldReader | None:
    """The fields orjson writes of a dataclass (those not marked private by a leading underscore) and one C call
    that reads them all; None for a type that is not a dataclass."""
    if not dataclasses.is_dataclass(kind):
        return None
    names = tuple(f.name for f in dataclasses.fields(kind) if not f.name.startswith("_"))
    get = operator.attrgetter(*names)
    return names, (get if len(names) > 1 else lambda value: (get(value),))


def _fields_sorted(value: Any) -> Any:
    """:func:`_unpacked`, and a dataclass as the dict of the fields orjson would write, for it to sort."""
    kind = type(value)
    if kind is PackedStrings:  # two an account
        return value.as_dict()
    try:
        reader = _DATACLASS_FIELDS[kind]
    except KeyError:
        reader = _DATACLASS_FIELDS[kind] = _field_reader(kind)  # a few model classes: bounded
    if reader is not None:
        names, read = reader
        return dict(zip(names, read(value), strict=True))
    return _unpacked(value)


def _unpacked(value: Any) -> Any:
    """:func:`_packed` for indented text, where a packed text given as it is would not be indented."""
    if isinstance(value, PackedStrings):
        return value.as_dict()
    return _packed(value)


BATCH = 256  # items converted and written together: a chunk is some 100 kilobytes
T = TypeVar("T")


def batched(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def dumps_lines(items: Iterable[Any]) -> Iterator[bytes]:
    """JSON Lines: each item compact on a line of its own, a batch of lines a chunk."""
    for batch in batched(items):
        yield b"".join(dumps(item) + b"\n" for item in batch)


class Streamed:
    """A list, or a mapping, inside a document given to :func:`dumps_streamed`: written a batch at a time, never
    converted whole (an iterable is read once, as it is written). ``keys_sorted``: its items are plain dicts
    whose keys (nested ones too) are already in sorted order, written as they are in a sorted document instead
    of being read back and sorted."""

    def __init__(self, items: Iterable[Any] | Mapping[str, Any], *, keys_sorted: bool = False) -> None:
        self.items = items
        self.keys_sorted = keys_sorted


def dumps_streamed(document: Any, *, indent: bool = False, sort_keys: bool = False,
                   batch: int = BATCH) -> Iterator[bytes]:
    """``dumps(document, indent=..., sort_keys=...)``, the same bytes, in chunks, each :class:`Streamed` inside
    ``document`` (in its dicts and lists) written as the list or mapping it holds, ``batch`` items at a time.

    The document is written once with a random token in each streamed value's place (no value from a directory
    can guess it) and cut there; a list's items are written a batch at a time, a mapping's each on its own, and
    indented to their depth."""
    tokens: dict[bytes, tuple[Streamed, int]] = {}

    def place(value: Any, depth: int) -> Any:
        if isinstance(value, Streamed):
            token = secrets.token_hex(16)
            tokens[f'"{token}"'.encode()] = (value, depth)
            return token
        if isinstance(value, dict):
            return {key: place(item, depth + 1) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [place(item, depth + 1) for item in value]
        return value

    text = dumps(place(document, 0), indent=indent, sort_keys=sort_keys)
    done = 0
    for place_at, token in sorted((text.index(token), token) for token in tokens):
        yield text[done:place_at]
        streamed, depth = tokens[token]
        yield from _streamed_items(streamed, depth, indent, sort_keys, batch)
        done = place_at + len(token)
    yield text[done:]


def _streamed_items(streamed: Streamed, depth: int, indent: bool, sort_keys: bool, batch: int) -> Iterator[bytes]:
    items = streamed.items
    sort_values = sort_keys and not streamed.keys_sorted
    opening, closing = (b"{", b"}") if isinstance(items, Mapping) else (b"[", b"]")
    inner = b"\n" + b"  " * (depth + 1) if indent else b""

    def value(item: Any) -> bytes:  # indented as a member at this depth
        text = dumps(item, indent=indent, sort_keys=sort_values)
        return text.replace(b"\n", inner) if indent else text

    def member(pair: tuple[str, Any]) -> bytes:
        return inner + dumps(pair[0]) + (b": " if indent else b":") + value(pair[1])

    groups: Iterable[bytes]
    if isinstance(items, Mapping):
        members = map(member, sorted(items.items()) if sort_keys else items.items())
        groups = (b",".join(group) for group in batched(members, batch))
    else:
        groups = (_list_body(group, depth, indent, sort_values) for group in batched(items, batch))
    first = True
    for group_text in groups:
        yield (opening if first else b",") + group_text
        first = False
    yield opening + closing if first else (b"\n" + b"  " * depth if indent else b"") + closing


def _list_body(items: list[Any], depth: int, indent: bool, sort_keys: bool) -> bytes:
    """The elements of a list at ``depth`` as ``dumps`` writes them inside it (each on its line when indented),
    from one ``dumps`` of all of them, not a call and an indenting copy an element."""
    text = dumps(items, indent=indent, sort_keys=sort_keys)
    if not indent:
        return text[1:-1]  # "[a,b]"
    # "[\n  a,\n  b\n]": each line moved in by the list's own depth.
    return text[1:-2].replace(b"\n", b"\n" + b"  " * depth) if depth else text[1:-2]


def loads(data: str | bytes) -> Any:
    """Parse JSON (``ValueError`` when it is not). orjson reads an integer beyond 64 bits as a float, silently:
    text that may hold one is parsed by ``json``, which keeps it whole (what :func:`dumps` wrote reads back)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        return json.loads(raw) if _may_hold_wide_integer(raw) else orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from None


_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_WIDE = (b"0" * 20, b"-" + b"0" * 19)  # at least 2**64, or below -2**63: beyond what orjson reads as integers
_SCAN = 1 << 24


def _may_hold_wide_integer(data: bytes) -> bool:
    """Whether ``data`` has a run of 20 digits, or a minus and 19 (in a string too: then the slower parser
    reads it, still rightly). Scanned in slices with every digit made one byte: a tenth of orjson's own time."""
    for start in range(0, len(data), _SCAN):
        digits = data[start:start + _SCAN + 20].translate(_DIGITS)  # 20 more: a run across the cut is seen
        if any(wide in digits for wide in _WIDE):
            return True
    return False
