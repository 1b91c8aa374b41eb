"""A source's snapshot stored as its difference from the one before: the accounts that changed, arrived or left.

An audit a week after the last finds most accounts as they were; storing each snapshot whole made the
history grow by the whole directory every run. A delta keeps the order too (a past run renders again byte for
byte from its snapshot): the accounts kept stay where they were, the new ones at the positions recorded. When
the new order is not that (a server that returns entries in another order), there is no delta and the snapshot
is stored whole.

The next audit reads the previous snapshot once, as its accounts' stored encodings in order, and compares each
with the encoding of the current account of the same id (:func:`compare_stored`): it holds no second directory
of account objects, nor a digest of each, beside the one it has just read; only the accounts whose encoding
differs, and those gone, are read back whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from auditor import jsonio
from auditor.jsonio import Streamed
from auditor.model import Account, account_from_jsonable, to_jsonable


def digest(encoded: bytes) -> bytes:
    """The digest of an account's stored encoding (``jsonio.dumps``): equal digests, the same account."""
    return hashlib.blake2b(encoded, digest_size=16).digest()


def encoding_digest(account: Account) -> bytes:
    # The encoding keeps mappings' order, which is part of what a report shows: a reordered mapping is a change.
    return digest(jsonio.dumps(account))


@dataclass(frozen=True)
class Comparison:
    """The previous snapshot against the current accounts: every previous id in its order (with its digest, when
    compared by digests), and the ids in both whose encodings differ."""

    previous: Mapping[str, bytes | None]
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


def compare_stored(previous: Iterable[tuple[str, bytes]], current: Sequence[Account],
                   ) -> tuple[Comparison, list[bytes]]:
    """The previous snapshot, its (id, stored encoding) pairs read once in their order, against the current
    accounts: the comparison, and the stored encodings of the accounts that differ or are gone. Each account is
    compared by its encoding itself: at a million accounts, reading the snapshot as digests before the directory
    was read, then again for the accounts that differ, was 20 s of the next audit and 200 MB held throughout."""
    by_id = {a.id: a for a in current}
    ids: dict[str, None] = {}  # as :func:`compare` keeps them: the current accounts' own strings where they can be
    changed: set[str] = set()
    differing: list[bytes] = []
    repeated = False
    for account_id, line in previous:
        account = by_id.get(account_id)
        if account is None:
            differing.append(line)
        else:
            account_id = account.id
            if jsonio.dumps(account) != line:
                changed.add(account_id)
                differing.append(line)
        repeated = repeated or account_id in ids
        ids[account_id] = None
    return Comparison(ids, frozenset(changed), repeated), differing


@dataclass(frozen=True)
class SnapshotChange:
    """How the current snapshot differs from the previous one: the ids removed (in the previous order), the
    accounts changed and the accounts added with their index (the current accounts themselves)."""

    removed: list[str]
    changed: list[Account]
    added: list[tuple[int, Account]]

    def encoded(self) -> Iterator[bytes]:
        """:func:`delta`'s JSON values as ``jsonio.dumps`` writes them, in chunks: the accounts written as they are
        encoded, never converted to dicts (with a twentieth of a million accounts changed, 150 MB of them)."""
        return jsonio.dumps_streamed({"removed": self.removed, "changed": Streamed(self.changed),
                                      "added": Streamed(self.added)})


def delta(previous: Comparison | Sequence[Account], current: list[Account]) -> dict[str, Any] | None:
    """``current`` as changes to ``previous`` (its accounts, or their comparison with ``current``), as JSON values,
    or None when only a whole copy keeps its order."""
    change = change_of(previous, current)
    if change is None:
        return None
    return {"removed": change.removed, "changed": [to_jsonable(a) for a in change.changed],
            "added": [[index, to_jsonable(account)] for index, account in change.added]}


def change_of(previous: Comparison | Sequence[Account], current: list[Account]) -> SnapshotChange | None:
    """:func:`delta`, its accounts as they are; None when only a whole copy keeps the order. Worked out as soon
    as the snapshots are compared: the comparison (every previous id) is not held until the run is recorded."""
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
    return SnapshotChange([account_id for account_id in before if account_id not in now_ids],
                          [a for a in current if a.id in previous.changed], added)


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
