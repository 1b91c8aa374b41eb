"""A source's snapshot stored as its difference from the one before: the accounts that changed, arrived or left.

An audit a week after the last finds most accounts as they were; storing each snapshot whole made the
history grow by the whole directory every run. A delta keeps the order too (a past run renders again byte for
byte from its snapshot): the accounts kept stay where they were, the new ones at the positions recorded. When
the new order is not that (a server that returns entries in another order), there is no delta and the snapshot
is stored whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from auditor.model import Account, account_from_jsonable, to_jsonable


def _same(before: Account, now: Account) -> bool:
    # Equal values, and mappings in the same order: the order is part of what a report shows.
    return before == now and list(before.raw) == list(now.raw) and list(before.identifiers) == list(now.identifiers)


def delta(previous: list[Account], current: list[Account]) -> dict[str, Any] | None:
    """``current`` as changes to ``previous``, or None when only a whole copy keeps its order."""
    before = {a.id: a for a in previous}
    now_ids = {a.id for a in current}
    if len(before) != len(previous) or len(now_ids) != len(current):
        return None  # repeated ids: no id-keyed difference describes them
    changed: list[Account] = []
    added: list[tuple[int, Account]] = []
    for index, account in enumerate(current):
        old = before.get(account.id)
        if old is None:
            added.append((index, account))
        elif not _same(old, account):
            changed.append(account)
    removed = [a.id for a in previous if a.id not in now_ids]
    kept = (a.id for a in previous if a.id in now_ids)
    if list(_merge(kept, [(i, a.id) for i, a in added], len(current))) != [a.id for a in current]:
        return None
    return {"removed": removed, "changed": to_jsonable(changed),
            "added": [[index, to_jsonable(account)] for index, account in added]}


def apply(previous: list[Account], change: dict[str, Any]) -> list[Account]:
    """The snapshot ``delta`` described: ``previous`` with the change made."""
    removed = set(change["removed"])
    replaced = {a.id: a for a in map(account_from_jsonable, change["changed"])}
    added = [(int(index), account_from_jsonable(data)) for index, data in change["added"]]
    kept = (replaced.get(a.id, a) for a in previous if a.id not in removed)
    return list(_merge(kept, added, sum(1 for a in previous if a.id not in removed) + len(added)))


T = TypeVar("T")


def _merge(kept: Iterator[T], added: list[tuple[int, T]], total: int) -> Iterator[T]:
    """``kept`` in its order with each of ``added`` at its index of the result."""
    arrivals = iter(added)
    arrival = next(arrivals, None)
    for index in range(total):
        if arrival is not None and arrival[0] == index:
            yield arrival[1]
            arrival = next(arrivals, None)
        else:
            yield next(kept)
