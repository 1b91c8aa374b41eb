"""auditor.jsonio writes the bytes json.dumps writes; the model's fast converter gives the generic walk's values."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from auditor import jsonio
from auditor.model import Account, AccountKind, DepartedAccount, to_jsonable
from auditor.timeconv import to_iso

# Floats below 1e-4 are the documented difference (0.00001 for 1e-05): the same number, other digits.
_FLOATS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x == 0 or abs(x) >= 1e-4)
_SCALARS = st.none() | st.booleans() | st.integers() | _FLOATS | st.text()
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                                           max_size=4), max_leaves=20)


@given(_VALUES, st.booleans(), st.booleans())
def test_the_same_bytes_as_json_dumps(value: Any, indent: bool, sort_keys: bool) -> None:
    try:
        expected = json.dumps(value, ensure_ascii=False, sort_keys=sort_keys,
                              **({"indent": 2} if indent else {"separators": (",", ":")})).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: neither writes them
        return
    assert jsonio.dumps(value, indent=indent, sort_keys=sort_keys) == expected


@given(_VALUES)
def test_what_it_writes_reads_back(value: Any) -> None:
    try:
        data = jsonio.dumps(value)
    except UnicodeEncodeError:
        return
    assert jsonio.loads(data) == json.loads(data)


def _generic(value: Any) -> Any:
    """The walk to_jsonable replaced, kept here as its specification."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _generic(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): _generic(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_generic(v) for v in value]
    return value


_MOMENTS = st.datetimes(timezones=st.just(UTC)) | st.none()
_SINCE = datetime(2026, 6, 30, tzinfo=UTC)


@given(st.builds(Account, source=st.text(), id=st.text(), username=st.text(), enabled=st.none() | st.booleans(),
                 kind=st.sampled_from(AccountKind), created_at=_MOMENTS, last_activity_at=_MOMENTS,
                 activity_lag=st.timedeltas(), groups=st.lists(st.text()),
                 identifiers=st.dictionaries(st.text(), st.text()), raw=st.dictionaries(st.text(), st.text())))
def test_the_fast_converter_gives_the_generic_walks_values(account: Account) -> None:
    assert to_jsonable(account) == _generic(account)
    assert to_jsonable({AccountKind.HUMAN: (account, 1)}) == _generic({AccountKind.HUMAN: (account, 1)})
    # orjson walking the model itself writes what the converted value gives.
    nested = {AccountKind.HUMAN: (account, 1), "at": account.created_at, "lag": account.activity_lag,
              "departed": DepartedAccount(account, _SINCE, None)}  # a dataclass inside a dataclass
    for option in (0, orjson.OPT_INDENT_2):
        try:
            expected = orjson.dumps(_generic(nested), option=option)
        except orjson.JSONEncodeError:  # lone surrogates: neither writes them
            continue
        assert jsonio.dumps(nested, indent=bool(option)) == expected
        # Sorted: each dataclass handed to orjson as the dict of its fields, sorted as the converted value is.
        assert jsonio.dumps(nested, indent=bool(option), sort_keys=True) == \
            orjson.dumps(_generic(nested), option=option | orjson.OPT_SORT_KEYS)


@given(st.dictionaries(st.text(), _VALUES, max_size=4), st.lists(_VALUES, max_size=30),
       st.dictionaries(st.text(), _VALUES, max_size=5), st.booleans(), st.booleans(),
       st.integers(min_value=1, max_value=7))
def test_a_streamed_document_is_the_same_bytes(document: dict[str, Any], items: list[Any], mapping: dict[str, Any],
                                               indent: bool, sort_keys: bool, batch: int) -> None:
    """Outputs and stored results are written with their long lists and mappings streamed: the same bytes,
    wherever the streamed values sit."""
    whole = {**document, "items": items, "nested": [{"mapping": mapping}, 1]}
    streamed = {**document, "items": jsonio.Streamed(iter(items)), "nested": [{"mapping": jsonio.Streamed(mapping)}, 1]}
    try:
        expected = jsonio.dumps(whole, indent=indent, sort_keys=sort_keys)
    except UnicodeEncodeError:
        return
    chunks = list(jsonio.dumps_streamed(streamed, indent=indent, sort_keys=sort_keys, batch=batch))
    assert b"".join(chunks) == expected


def _keys_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _keys_sorted(value[k]) for k in sorted(value)}
    return [_keys_sorted(v) for v in value] if isinstance(value, list) else value


@given(st.lists(st.dictionaries(st.text(), _VALUES, max_size=6), max_size=20), st.booleans(),
       st.integers(min_value=1, max_value=7))
def test_items_given_with_their_keys_sorted_are_written_as_a_sorted_document_writes_them(
        items: list[dict[str, Any]], indent: bool, batch: int) -> None:
    items = [_keys_sorted(item) for item in items]
    try:
        expected = jsonio.dumps({"b": 1, "a": items}, indent=indent, sort_keys=True)
    except UnicodeEncodeError:
        return
    streamed = {"b": 1, "a": jsonio.Streamed(iter(items), keys_sorted=True)}
    assert b"".join(jsonio.dumps_streamed(streamed, indent=indent, sort_keys=True, batch=batch)) == expected


@settings(deadline=None)  # tens of megabytes of padding: 280 ms seen with the other core busy
@given(st.integers(min_value=-(2**70), max_value=2**70), st.integers(min_value=0, max_value=1 << 25))
@example(-(2**63) - 1, (1 << 24) - 10).via("a number across the first slice's end")
@example(2**64, (1 << 24) - 10).via("a number across the first slice's end")
def test_integers_beyond_64_bits_read_back_whole(value: int, padding: int) -> None:
    """orjson reads them as floats; jsonio.loads finds them (also across the slices it scans) and keeps them."""
    data = b"[" + b" " * padding + str(value).encode() + b"]"
    assert jsonio.loads(data) == [value]


@given(st.datetimes(timezones=st.just(UTC)) | st.datetimes())
def test_times_are_written_as_to_iso_writes_them(moment: datetime) -> None:
    # orjson writes the model's times itself (UTC with a Z; a naive time is taken as UTC, as to_iso takes it).
    assert jsonio.dumps({"at": [moment]}) == f'{{"at":["{to_iso(moment)}"]}}'.encode()
