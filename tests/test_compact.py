"""The compact mappings the model keeps (auditor.compact) read, compare and are written exactly as the dicts they
were made from, whatever their text holds."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor import jsonio
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
