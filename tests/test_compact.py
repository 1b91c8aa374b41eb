"""The compact mappings the model keeps (auditor.compact) read, compare and are written exactly as the dicts they
were made from, whatever their text holds."""

from __future__ import annotations

import gc
import pickle
import random
import threading
import weakref
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor import compact, jsonio
from auditor.compact import PackedStrings, SharedKeys
from auditor.model import Account, Finding, Severity, Subject, to_jsonable

# Any code point, lone surrogates too: orjson cannot write those, and the mapping must still hold them.
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)
STRING_MAPS = st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
EVIDENCE = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=8)


def _round_trip(value: Any) -> Any:
    """Pickled and read back, as the export's reader process hands accounts over."""
    return pickle.loads(pickle.dumps(value))  # noqa: S301 - bytes this test just made


def _encodings(value: Any) -> list[bytes]:
    return [jsonio.dumps(value, indent=indent, sort_keys=sort) for indent in (False, True) for sort in (False, True)]


@given(STRING_MAPS)
def test_packed_strings_read_as_the_dict_they_were_made_from(items: dict[str, str]) -> None:
    packed = PackedStrings(items)
    assert packed == items and items == packed and dict(packed) == items and list(packed) == list(items)
    assert len(packed) == len(items) and repr(packed) == repr(items)
    for key, value in items.items():
        assert key in packed and packed[key] == value and packed.get(key) == value
    assert _round_trip(packed) == packed
    assert PackedStrings(packed) == packed


@given(STRING_MAPS)
def test_packed_strings_are_written_as_their_dict(items: dict[str, str]) -> None:
    packed = PackedStrings(items)
    assert to_jsonable(packed) == items
    try:
        expected = _encodings({"inside": [items]})
    except UnicodeEncodeError:  # lone surrogates: JSON output cannot hold them, packed or not
        with pytest.raises(UnicodeEncodeError):
            _encodings({"inside": [packed]})
        return
    assert _encodings({"inside": [packed]}) == expected
    assert _encodings(packed) == _encodings(items)


@given(EVIDENCE)
def test_shared_keys_read_and_are_written_as_their_dict(items: dict[str, Any]) -> None:
    shared = SharedKeys(items)
    assert shared == items and items == shared and dict(shared) == items and list(shared) == list(items)
    for key, value in items.items():
        assert key in shared and shared[key] == value
    with pytest.raises(KeyError):
        shared["\x00 not a key"]
    assert to_jsonable(shared) == to_jsonable(items)
    assert _encodings(shared) == _encodings(items)
    again = _round_trip(shared)
    assert again == shared


def test_mappings_of_the_same_keys_share_one_tuple_of_them() -> None:
    first, second = SharedKeys({"a": 1, "b": 2}), SharedKeys({"a": 3, "b": 4})
    assert first._keys is second._keys
    assert _round_trip(first)._keys is first._keys  # read back into this process's tuple
    assert SharedKeys({"b": 1, "a": 2}) != {"a": 2} and SharedKeys({"b": 1, "a": 2}) == {"a": 2, "b": 1}


def test_the_model_keeps_them_packed_and_compares_as_before() -> None:
    raw, ids = {"dn": "CN=a,DC=x", "pwdLastSet": "0"}, {"sid": "S-1-5-21-1-2-3-500"}
    account = Account(source="ad", id="1", username="a", enabled=True, raw=raw, identifiers=ids)
    assert type(account.raw) is PackedStrings and type(account.identifiers) is PackedStrings
    assert account == Account(source="ad", id="1", username="a", enabled=True, raw=dict(raw), identifiers=ids)
    assert account != Account(source="ad", id="1", username="a", enabled=True, raw={**raw, "dn": "CN=b"})
    assert jsonio.loads(jsonio.dumps(account))["raw"] == raw
    finding = Finding("r", Severity.LOW, "ad", Subject("account", "1", "a"), "m", {"days": 3}, ())
    assert type(finding.evidence) is SharedKeys and finding.evidence == {"days": 3}


def test_accounts_without_aliases_or_privilege_share_one_empty_list_that_refuses_changes() -> None:
    """56 bytes an account each: the empty list is one object, equal to [] and written as one, and kept one
    through pickling (the two-core read) and copies; changing it raises instead of changing every account."""
    first, second = (Account(source="ad", id=str(n), username=f"u{n}", enabled=True) for n in range(2))
    assert first.email_aliases is second.email_aliases is first.privilege_evidence == []
    assert jsonio.dumps(first.privilege_evidence) == b"[]" and to_jsonable(first)["email_aliases"] == []
    assert _round_trip(first).privilege_evidence is second.privilege_evidence
    for change in (lambda items: items.append("x"), lambda items: items.extend(["x"]),
                   lambda items: items.insert(0, "x"), lambda items: items.__iadd__(["x"]),
                   lambda items: items.__setitem__(slice(0, 0), ["x"])):
        with pytest.raises(TypeError):
            change(first.privilege_evidence)
    assert second.privilege_evidence == [] and second.email_aliases == []
    second.privilege_evidence = ["member of Domain Admins"]  # an account with some gets a list of its own
    assert first.privilege_evidence == []


def _in_a_thread_of_its_own(make: Any) -> Any:
    """What ``make`` returns, made in a new thread: with a text store of its own."""
    made: list[Any] = []
    thread = threading.Thread(target=lambda: made.append(make()))
    thread.start()
    thread.join()
    return made[0]


def test_longer_texts_are_kept_compressed_in_blocks_and_read_back_in_any_order() -> None:
    """Some 90 blocks of texts: each mapping reads back as made, in order, at random, from another thread while
    the store is still being filled, and pickled (the two-core read) into this thread's store."""
    rng = random.Random(7)
    items = [{"dn": f"CN=User {n},OU=Users,DC=corp,DC=example", "pwdLastSet": str(rng.getrandbits(60)),
              "odd": "\u00e9\"\n\x00" * rng.randrange(4)} for n in range(20_000)]
    packed = _in_a_thread_of_its_own(lambda: [PackedStrings(i) for i in items])
    assert all(type(p._packed) is int for p in packed) and len({id(p._store) for p in packed}) == 1
    assert len(packed[0]._store._blocks) > 50
    assert [p.as_dict() for p in packed] == items
    for n in rng.sample(range(len(items)), 2_000):
        assert packed[n] == items[n] and packed[n]["dn"] == items[n]["dn"]
    assert jsonio.dumps(packed[123]) == jsonio.dumps(items[123])
    again = _round_trip(packed[:500])
    assert again == items[:500] and again[0]._store is not packed[0]._store
    while_filled: list[bool] = []

    def fill_and_read() -> None:
        more = [PackedStrings(i) for i in items[:3_000]]
        while_filled.append(all(m == i for m, i in zip(more, items, strict=False)))
    reader = threading.Thread(target=fill_and_read)
    reader.start()
    assert all(p == i for p, i in zip(packed, items, strict=True))
    reader.join()
    assert while_filled == [True]


def test_short_and_oversized_texts_are_kept_as_they_are() -> None:
    short, large = PackedStrings({"a": "b"}), PackedStrings({"a": "x" * (compact._BLOCK + 1)})
    assert type(short._packed) is bytes and type(large._packed) is bytes
    assert short == {"a": "b"} and large["a"] == "x" * (compact._BLOCK + 1)


def test_a_store_goes_with_the_last_mapping_kept_in_it() -> None:
    packed = _in_a_thread_of_its_own(lambda: [PackedStrings({"dn": f"CN=User {n:060d}"}) for n in range(100)])
    store = weakref.ref(packed[0]._store)
    gc.collect()
    assert store() is not None
    del packed
    gc.collect()
    assert store() is None
