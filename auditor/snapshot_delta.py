"""A source's snapshot stored as its difference from the one before: the accounts that changed, arrived or left.

An audit a week after the last finds most accounts as they were; storing each snapshot whole made the
history grow by the whole directory every run. A delta keeps the order too (a past run renders again byte for
byte from its snapshot): the accounts kept stay where they were, the new ones at the positions recorded. When
the new order is not that (a server that returns entries in another order), there is no delta and the snapshot
is stored whole.

The previous snapshot is compared as the digests of its accounts' stored encodings (:class:`Comparison`), so
the next audit does not hold a second directory of account objects beside the one it has just read: only the
accounts whose encoding differs, and those gone, are read back whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from auditor import jsonio
from auditor.model import Account, account_from_jsonable, to_jsonable


def digest(encoded: bytes) -> bytes:
    """The digest of an account's stored encoding (``jsonio.dumps``): equal digests, the same account."""
    return hashlib.blake2b(encoded, digest_size=16).digest()


def encoding_digest(account: Account) -> bytes:
    # The encoding keeps mappings' order, which is part of what a report shows: a reordered mapping is a change.
    return digest(jsonio.dumps(account))


@dataclass(frozen=True)
class Comparison:
    """The previous snapshot against the current accounts: every previous id in its order (with its digest), and
    the ids in both whose encodings differ."""

    previous: Mapping[str, bytes]
    changed: frozenset[str]
    repeated_ids: bool = False  # the previous snapshot names an id twice: no id-keyed difference describes it

    def unchanged(self, account_id: str) -> bool:
        return account_id in self.previous and account_id not in self.changed


def compare(previous: Mapping[str, bytes], current: Sequence[Account], *, repeated_ids: bool = False) -> Comparison:
    changed = frozenset(a.id for a in current if a.id in previous and previous[a.id] != encoding_digest(a))
    # Each previous id is kept as the current account's own string when there is one: read back from the history,
    # the ids were a second copy of a million ids (some 90 MB), held until the run is recorded.
    ids = {a.id: a.id for a in current}
    return Comparison({ids.get(i, i): digest for i, digest in previous.items()}, changed, repeated_ids)


def delta(previous: Comparison | Sequence[Account], current: list[Account]) -> dict[str, Any] | None:
    """``current`` as changes to ``previous`` (its accounts, or their comparison with ``current``), or None when
    only a whole copy keeps its order."""
    if not isinstance(previous, Comparison):
        digests = {a.id: encoding_digest(a) for a in previous}
        previous = compare(digests, current, repeated_ids=len(digests) != len(previous))
    before = previous.previous
    now_ids = {a.id for a in current}
    if previous.repeated_ids or len(now_ids) != len(current):
        return None  # repeated ids: no id-keyed difference describes them
    added = [(index, account) for index, account in enumerate(current) if account.id not in before]
    kept = (account_id for account_id in before if account_id in now_ids)
    if list(_merge(kept, [(i, a.id) for i, a in added])) != [a.id for a in current]:
        return None
    return {"removed": [account_id for account_id in before if account_id not in now_ids],
            "changed": [to_jsonable(a) for a in current if a.id in previous.changed],
            "added": [[index, to_jsonable(account)] for index, account in added]}


T = TypeVar("T")


def apply_stream(previous: Iterator[tuple[str, T]], change: dict[str, Any],
                 read: Callable[[dict[str, Any]], T]) -> Iterator[tuple[str, T]]:
    """The (id, item) pairs of the snapshot ``change`` describes, from the previous snapshot's pairs in order;
    ``read`` makes an item of a stored account."""
    removed = set(change["removed"])
    replaced = {data["id"]: read(data) for data in change["changed"]}
    added = [(int(index), (data["id"], read(data))) for index, data in change["added"]]
    kept = ((i, replaced.get(i, item)) for i, item in previous if i not in removed)
    return _merge(kept, added)


def apply(previous: list[Account], change: dict[str, Any]) -> list[Account]:
    """The snapshot ``delta`` described: ``previous`` with the change made."""
    return [account for _, account in apply_stream(((a.id, a) for a in previous), change, account_from_jsonable)]


def _merge(kept: Iterator[T], added: list[tuple[int, T]]) -> Iterator[T]:
    """``kept`` in its order with each of ``added`` at its index of the result."""
    arrivals = iter(added)
    arrival = next(arrivals, None)
    index = 0
    for item in kept:
        while arrival is not None and arrival[0] <= index:
            yield arrival[1]
            arrival, index = next(arrivals, None), index + 1
        yield item
        index += 1
    while arrival is not None:
        yield arrival[1]
        arrival = next(arrivals, None)
