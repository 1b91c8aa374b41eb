"""A list of JSON items stored as its difference from an earlier one: runs of items copied from it, and the rest.

A run's change events are mostly the previous run's (every account's creation, the look-back window's events):
a week later, nearly all of them again, in the same order. Items are compared as their encoded bytes, so the
list's order and every value are kept exactly; an item that changed in any way is simply stored again.

Everything stays bytes, one item a line (compact JSON has no line breaks): a whole list is its items' lines; a
delta's lines are ``=START,COUNT`` (``COUNT`` items of the earlier list from ``START``) or ``+ITEM``. Nothing is
parsed on the way, so making a delta costs a few bytes an item, not the earlier list's objects.
"""

from __future__ import annotations

from collections.abc import Sequence


def whole(items: Sequence[bytes]) -> bytes:
    return b"\n".join(items)


def items_of(stored: bytes) -> list[bytes]:
    """The items of a list stored :func:`whole`."""
    return stored.split(b"\n") if stored else []


def delta(base: Sequence[bytes], items: Sequence[bytes]) -> bytes:
    """``items`` as copies from ``base`` and items of their own."""
    where: dict[bytes, int] = {}
    for index, item in enumerate(base):
        where.setdefault(item, index)
    lines: list[bytes] = []
    start = count = 0  # the copy being extended (count 0: none)
    for item in items:
        if count and start + count < len(base) and base[start + count] == item:
            count += 1
            continue
        if count:
            lines.append(b"=%d,%d" % (start, count))
            count = 0
        found = where.get(item)
        if found is None:
            lines.append(b"+" + item)
        else:
            start, count = found, 1
    if count:
        lines.append(b"=%d,%d" % (start, count))
    return b"\n".join(lines)


def apply(base: Sequence[bytes], stored: bytes) -> list[bytes]:
    """The items :func:`delta` described (``base``: the earlier list's items)."""
    items: list[bytes] = []
    for line in stored.split(b"\n") if stored else []:
        if line.startswith(b"+"):
            items.append(line[1:])
            continue
        start, _, count = line[1:].partition(b",")
        first, last = int(start), int(start) + int(count)
        if not (line.startswith(b"=") and 0 <= first <= last <= len(base)):
            raise ValueError(f"not a delta line, or a copy beyond the {len(base)} items: {line[:40]!r}")
        items.extend(base[first:last])
    return items
