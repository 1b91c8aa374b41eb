"""Read-only mappings that cost a fraction of a dict: what the model keeps per account and per finding.

At a million accounts every byte of an account is a megabyte. An account's quoted source values (``raw``) and
join keys (``identifiers``) were two dicts of short strings, 907 bytes an account of the bench's AD export: as
:class:`PackedStrings` they are one JSON text each, 572 bytes. A finding's ``evidence`` was a dict of 11 keys,
the same 11 for each of a rule's findings: as :class:`SharedKeys` its keys are one tuple for all of them, and a
finding is 277 bytes smaller.

Both compare equal to the dicts they were made from and are written as those dicts are (``auditor.jsonio``
and ``auditor.model.to_jsonable`` know them). Neither can be changed: make a new one.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

import orjson


class PackedStrings(Mapping[str, str]):
    """A ``str -> str`` mapping kept as its compact JSON text; read back on each access (these are read rarely:
    by the outputs that quote them, which embed the text as it is). A mapping that is not all strings, or that
    JSON cannot hold exactly (lone surrogates), is kept as a dict: never changed to fit."""

    __slots__ = ("_packed",)
    _packed: bytes | dict[str, str]

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        if isinstance(items, PackedStrings):
            self._packed = items._packed
            return
        values = dict(items or {})
        self._packed = values
        if not values:
            self._packed = _EMPTY
        elif all(type(k) is str and type(v) is str for k, v in values.items()):
            try:  # copied to its size: orjson leaves a small result in the 4 KB buffer it grew
                self._packed = bytes(memoryview(orjson.dumps(values)))
            except orjson.JSONEncodeError:  # lone surrogates: orjson writes only valid UTF-8
                pass

    def _items(self) -> dict[str, str]:
        packed = self._packed
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
        if isinstance(other, PackedStrings) and self._packed == other._packed:
            return True
        return isinstance(other, Mapping) and self._items() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, which has none

    def __repr__(self) -> str:
        return repr(self._items())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickled_strings, (self._packed,))  # the text itself, not decoded and packed again

    def json_value(self) -> orjson.Fragment | dict[str, str]:
        """What orjson writes in its place: the packed text itself (the bytes orjson wrote for the dict)."""
        packed = self._packed
        return orjson.Fragment(packed) if isinstance(packed, bytes) else packed

    def as_dict(self) -> dict[str, str]:
        return dict(self._items())


_EMPTY = b"{}"


def _unpickled_strings(packed: bytes | dict[str, str]) -> PackedStrings:
    mapping = PackedStrings.__new__(PackedStrings)
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
