"""A list of JSON items stored as its difference from an earlier one: runs of items copied from it, and the rest.

A run's change events are mostly the previous run's (every account's creation, the look-back window's events):
a week later, nearly all of them again, in the same order. Items are compared as their encoded bytes, so the
list's order and every value are kept exactly; an item that changed in any way is simply stored again.

Everything stays bytes, one item a line (compact JSON has no line breaks): a whole list is its items' lines; a
delta's lines are ``=START,COUNT`` (``COUNT`` items of the earlier list from ``START``) or ``+ITEM``. Nothing is
parsed on the way, so making a delta costs a few bytes an item, not the earlier list's objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence


def whole(items: Sequence[bytes]) -> bytes:
    return b"\n".join(items)


def items_of(stored: bytes) -> list[bytes]:
    """The items of a list stored :func:`whole`."""
    return stored.split(b"\n") if stored else []


def delta(base: Sequence[bytes], items: Iterable[bytes]) -> bytes:
    """``items`` as copies from ``base`` and items of their own."""
    return b"\n".join(delta_lines(base, items))


def delta_lines(base: Sequence[bytes], items: Iterable[bytes],
                key: Callable[[bytes], bytes] | None = None) -> Iterator[bytes]:
    """:func:`delta`'s lines, one at a time. With ``key``, ``base`` holds the keys of the earlier list's items
    (digests: at a million events the keys are a fifth of the items' bytes) and each item is compared by its
    key."""
    where: dict[bytes, int] = {}
    for index, known in enumerate(base):
        where.setdefault(known, index)
    start = count = 0  # the copy being extended (count 0: none)
    for item in items:
        wanted = item if key is None else key(item)
        if count and start + count < len(base) and base[start + count] == wanted:
            count += 1
            continue
        if count:
            yield b"=%d,%d" % (start, count)
            count = 0
        found = where.get(wanted)
        if found is None:
            yield b"+" + item
        else:
            start, count = found, 1
    if count:
        yield b"=%d,%d" % (start, count)


def keys(base_keys: Sequence[bytes], stored: bytes, key: Callable[[bytes], bytes]) -> list[bytes]:
    """The keys of the items :func:`delta` described, from the earlier list's keys: :func:`apply` without
    holding any item."""
    items: list[bytes] = []
    for line in stored.split(b"\n") if stored else []:
        if line.startswith(b"+"):
            items.append(key(line[1:]))
        else:
            items.extend(_copied(base_keys, line))
    return items


def apply(base: Sequence[bytes], stored: bytes) -> list[bytes]:
    """The items :func:`delta` described (``base``: the earlier list's items)."""
    items: list[bytes] = []
    for line in stored.split(b"\n") if stored else []:
        if line.startswith(b"+"):
            items.append(line[1:])
            continue
        items.extend(_copied(base, line))
    return items


def _copied(base: Sequence[bytes], line: bytes) -> Sequence[bytes]:
    start, _, count = line[1:].partition(b",")
    first, last = int(start), int(start) + int(count)
    if not (line.startswith(b"=") and 0 <= first <= last <= len(base)):
        raise ValueError(f"not a delta line, or a copy beyond the {len(base)} items: {line[:40]!r}")
    return base[first:last]
