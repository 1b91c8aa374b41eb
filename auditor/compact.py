"""Read-only mappings that cost a fraction of a dict: what the model keeps per account and per finding.

At a million accounts every byte of an account is a megabyte. An account's quoted source values (``raw``) and
join keys (``identifiers``) were two dicts of short strings, 907 bytes an account of the bench's AD export: as
:class:`PackedStrings` they are one JSON text each, 572 bytes. A finding's ``evidence`` was a dict of 11 keys,
the same 11 for each of a rule's findings: as :class:`SharedKeys` its keys are one tuple for all of them, and a
finding is 277 bytes smaller.

Both compare equal to the dicts they were made from and are written as those dicts are (``auditor.jsonio``
and ``auditor.model.to_jsonable`` know them). Neither can be changed: make a new one.

A packed text of some length is not kept as a ``bytes`` object of its own either: it is appended to a block of
texts compressed together (:class:`_TextStore`, zlib at level 1), and the mapping keeps where. Source values
repeat their keys and much of their values from one account to the next, so a block of them compresses several
times over: at the bench's AD export an account's two texts, 426 bytes, take 26 in their blocks, and an account
went from 1,473 to some 1,140 bytes (333 MB less at a million accounts) for some 1.6 s of compression.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any, cast

import orjson

_BLOCK = 16 << 10  # bytes of texts compressed together: one is read back in some 10 us
_STORE_BLOCKS = 4096  # blocks a store holds (64 MB of text) before the next store begins
_STORED_FROM = 64  # bytes: a shorter text is kept as it is (a handle costs some 40 bytes of its own)


class _TextStore:
    """Texts appended to blocks compressed as they fill. Texts are read back in about the order they were
    added (outputs walk accounts in order), so the last block read is kept whole. Each mapping holds its store:
    a store goes when the last mapping in it does; ``_current`` starts a new one when one is full, so one
    long-lived process does not keep every audit's texts."""

    __slots__ = ("__weakref__", "_blocks", "_last", "_lock", "_open")

    def __init__(self) -> None:
        self._blocks: list[bytes] = []  # compressed
        self._open = bytearray()  # the block being filled, not yet compressed
        self._lock = threading.Lock()  # a thread (the export's receiving thread) adds while another reads
        self._last: tuple[int, bytes] = (-1, b"")  # the last block read back: (index, text)

    @property
    def full(self) -> bool:
        return len(self._blocks) >= _STORE_BLOCKS

    def add(self, text: bytes) -> int:
        """A handle to ``text`` (at most ``_BLOCK`` bytes): its block, where it begins and its length."""
        with self._lock:
            index, start = len(self._blocks), len(self._open)
            self._open += text
            if len(self._open) >= _BLOCK:
                self._blocks.append(zlib.compress(self._open, 1))
                self._open = bytearray()
        return index << 32 | start << 16 | len(text)

    def text(self, handle: int) -> bytes:
        index, start, length = handle >> 32, handle >> 16 & 0xFFFF, handle & 0xFFFF
        last = self._last  # one read of an attribute always replaced whole: no lock to read the kept block
        if last[0] == index:
            return last[1][start:start + length]
        with self._lock:
            if index == len(self._blocks):
                return bytes(self._open[start:start + length])
            last = self._last
            if last[0] != index:
                last = self._last = (index, zlib.decompress(self._blocks[index]))
        return last[1][start:start + length]


_stores = threading.local()  # each thread fills a store of its own: a thread's texts are read back together


def _current() -> _TextStore:
    store: _TextStore | None = getattr(_stores, "current", None)
    if store is None or store.full:
        store = _stores.current = _TextStore()
    return store


class PackedStrings(Mapping[str, str]):
    """A ``str -> str`` mapping kept as its compact JSON text; read back on each access (these are read rarely:
    by the outputs that quote them, which embed the text as it is). A mapping that is not all strings, or that
    JSON cannot hold exactly (lone surrogates), is kept as a dict: never changed to fit. A longer text is kept in
    a :class:`_TextStore` (``_packed`` its handle there)."""

    __slots__ = ("_packed", "_store")
    _packed: bytes | dict[str, str] | int
    _store: _TextStore | None

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        if isinstance(items, PackedStrings):
            self._packed, self._store = items._packed, items._store
            return
        values = dict(items or {})
        self._packed, self._store = values, None
        if not values:
            self._packed = _EMPTY
        elif all(type(k) is str and type(v) is str for k, v in values.items()):
            try:
                self._keep(orjson.dumps(values))
            except orjson.JSONEncodeError:  # lone surrogates: orjson writes only valid UTF-8
                pass

    def _keep(self, text: bytes) -> None:
        if _STORED_FROM <= len(text) <= _BLOCK:
            store = self._store = _current()
            self._packed = store.add(text)
        else:  # copied to its size: orjson leaves a small result in the 4 KB buffer it grew
            self._packed = bytes(memoryview(text))

    def _text(self) -> bytes | dict[str, str]:
        """The packed JSON text (or the dict, kept so)."""
        packed = self._packed
        if isinstance(packed, int):
            return cast(_TextStore, self._store).text(packed)  # a handle is always kept with its store
        return packed

    def _items(self) -> dict[str, str]:
        packed = self._text()
        if isinstance(packed, bytes):
            items: dict[str, str] = orjson.loads(packed)
            return items
        return packed

    def __getitem__(self, key: str) -> str:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedStrings) and self._packed == other._packed and self._store is other._store:
            return True
        return isinstance(other, Mapping) and self._items() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, which has none

    def __repr__(self) -> str:
        return repr(self._items())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickled_strings, (self._text(),))  # the text itself, not decoded and packed again

    def json_value(self) -> orjson.Fragment | dict[str, str]:
        """What orjson writes in its place: the packed text itself (the bytes orjson wrote for the dict)."""
        packed = self._packed
        if isinstance(packed, int):  # the usual case first: two an account each time accounts are written
            return orjson.Fragment(cast(_TextStore, self._store).text(packed))
        return orjson.Fragment(packed) if isinstance(packed, bytes) else packed

    def as_dict(self) -> dict[str, str]:
        return dict(self._items())


_EMPTY = b"{}"


def _unpickled_strings(packed: bytes | dict[str, str]) -> PackedStrings:
    mapping = PackedStrings.__new__(PackedStrings)
    mapping._store = None
    if isinstance(packed, bytes):
        mapping._keep(packed)  # kept in this process's store
    else:
        mapping._packed = packed
    return mapping


# One key tuple per distinct list of keys; bounded, as the lists are the rules' own (a flood of distinct ones
# would still be held correctly, each by its own tuple).
_KEY_TUPLES: dict[tuple[str, ...], tuple[str, ...]] = {}
_MAX_KEY_TUPLES = 4096


class SharedKeys(Mapping[str, Any]):
    """A mapping whose keys are one tuple shared with every other mapping of the same keys in the same order,
    and whose values are a tuple."""

    __slots__ = ("_keys", "_values")
    _keys: tuple[str, ...]
    _values: tuple[Any, ...]

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        if isinstance(items, SharedKeys):
            self._keys, self._values = items._keys, items._values
            return
        items = items or {}
        keys = tuple(items)
        shared = _KEY_TUPLES.get(keys)
        if shared is None:
            shared = keys
            if len(_KEY_TUPLES) < _MAX_KEY_TUPLES:
                _KEY_TUPLES[keys] = keys
        self._keys = shared
        self._values = tuple(items.values())

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[self._keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def get(self, key: str, default: Any = None) -> Any:
        keys = self._keys
        return self._values[keys.index(key)] if key in keys else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and self.as_dict() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.as_dict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (SharedKeys, (self.as_dict(),))  # read back into the shared tuple of this process

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self._keys, self._values, strict=True))

    json_value = as_dict

    # A dict's views: Mapping's own look every key up again (an outputs' walk of a million findings).
    def items(self) -> ItemsView[str, Any]:
        return self.as_dict().items()

    def values(self) -> ValuesView[Any]:
        return self.as_dict().values()


class _NoItems(list[str]):
    """The empty list most accounts hold (no other addresses, no evidence of privilege): one object shared by
    all of them, which refuses to be changed so that sharing it is safe. An empty list of its own is 56 bytes an
    account, two a million accounts 112 MB. It is equal to ``[]`` and written as one; give an account a new list
    instead of adding to this one."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError("the shared empty list cannot be changed: assign a new list")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (no_items, ())  # read back as the one shared object


_NO_ITEMS = _NoItems()


def no_items() -> list[str]:
    """The shared empty list (a dataclass field's ``default_factory``): see :class:`_NoItems`."""
    return _NO_ITEMS


def json_value(value: Any) -> Any:
    """The value orjson writes for a compact mapping (or any other mapping: as a dict); ``TypeError`` for
    anything else."""
    if isinstance(value, PackedStrings | SharedKeys):
        return value.json_value()
    if isinstance(value, Mapping):
        return dict(value.items())
    raise TypeError(f"{type(value).__name__} is not a mapping")
