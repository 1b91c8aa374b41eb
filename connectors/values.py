"""Strict reading of vendor values: what a source does not say, or says in a form we cannot read, is unknown.

Every mapping reads its record through these helpers, so the rule holds in one place: an absent, null,
wrongly typed or out-of-range value becomes ``None`` (unknown), never ``False``, ``0`` or "never", and an
unreadable one is remembered with its record and attribute so the source's warnings name it. Absent
fields that decide a verdict (an ``accountEnabled`` left out of a ``$select``) are counted per attribute.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from auditor.timeconv import TimeFormatError, check_plausible, from_iso8601, from_unix

T = TypeVar("T")

# Listed one by one up to this many per source; past it they are counted by attribute (a broken export
# of a million accounts must not make a million-line warning list).
MAX_LISTED = 200


def name_pattern(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """Shell-style patterns (service account names), case-insensitive, as one expression to ``match`` a
    lower-cased name against: compiled once a source, not once an account. None when there are none."""
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns)) if patterns else None


@dataclass(frozen=True)
class Unreadable:
    record: str  # the record's id, DN, row number or login: whatever the user can find it by
    attribute: str
    reason: str

    def __str__(self) -> str:
        return f"unreadable value: {self.record}: {self.attribute}: {self.reason}; read as unknown"


class ValueProblems:
    """Unreadable values and meaningful absences met while mapping one source."""

    def __init__(self) -> None:
        self.unreadable: list[Unreadable] = []
        # Whole records that could not be read at all (not an object, cut off): the source is partial.
        self.bad_records: list[str] = []
        # attribute -> how many records lack it, and the first few (a projection can leave it out of all)
        self.absent: dict[str, int] = defaultdict(int)
        self._absent_first: dict[str, list[str]] = defaultdict(list)
        self._absent_meaning: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.unreadable)

    def add(self, record: object, attribute: str, reason: str) -> None:
        self.unreadable.append(Unreadable(str(record), attribute, reason))

    def bad_record(self, record: str, reason: str) -> None:
        self.bad_records.append(f"{record}: {reason}")

    def extend(self, other: ValueProblems) -> None:
        """Add ``other``'s problems after these: what was met in another part of the same source."""
        self.unreadable += other.unreadable
        self.bad_records += other.bad_records
        for attribute, count in other.absent.items():
            self.absent[attribute] += count
            self._absent_first[attribute] = (self._absent_first[attribute] + other._absent_first[attribute])[:3]
            self._absent_meaning[attribute] = other._absent_meaning[attribute]

    def partial_error(self, *others: str | None) -> str | None:
        """What makes the source partial: records skipped because they could not be read, and ``others``."""
        parts = [o for o in others if o]
        if self.bad_records:
            listed = "; ".join(self.bad_records[:20]) + ("; ..." if len(self.bad_records) > 20 else "")
            parts.append(f"{len(self.bad_records)} record(s) could not be read and are not audited: {listed}")
        return "; ".join(parts) or None

    def map_each(self, items: Iterable[Any], map_one: Callable[[Any], T]) -> list[T]:
        """``map_one`` over ``items``; a record that breaks its mapping is listed as a bad record (the source
        is then partial) and the others are still audited: one record never costs the source its audit."""
        mapped = []
        for item in items:
            try:
                mapped.append(map_one(item))
            except Exception as exc:
                self.bad_record(record_name(item), f"{type(exc).__name__}: {str(exc)[:200]}")
        return mapped

    def missing(self, record: object, attribute: str, meaning: str) -> None:
        """``attribute`` is absent from ``record`` (or null), so ``meaning`` (e.g. "enabled state unknown")."""
        self.absent[attribute] += 1
        if len(self._absent_first[attribute]) < 3:
            self._absent_first[attribute].append(str(record))
        self._absent_meaning[attribute] = meaning

    # ---- JSON values ----

    def boolean(self, value: object, record: object, attribute: str) -> bool | None:
        """JSON true/false only: a string "false" is not a boolean (and is truthy in Python)."""
        if value is None or isinstance(value, bool):
            return value
        self.add(record, attribute, f"expected true or false, got {_shown(value)}")
        return None

    def text(self, value: object, record: object, attribute: str, *, numbers: bool = False) -> str | None:
        """A JSON string; with ``numbers``, a JSON number too (employee numbers arrive as either)."""
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        if numbers and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.add(record, attribute, f"expected a string, got {_shown(value)}")
        return None

    def integer(self, value: object, record: object, attribute: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
        self.add(record, attribute, f"expected a whole number, got {_shown(value)}")
        return None

    def mapping(self, value: object, record: object, attribute: str) -> Mapping[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, Mapping):
            return value
        self.add(record, attribute, f"expected an object, got {_shown(value)}")
        return None

    def items(self, value: object, record: object, attribute: str) -> list[Any]:
        """A JSON array's items (absent or null: none)."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.add(record, attribute, f"expected a list, got {_shown(value)}")
        return []

    def moment(self, value: object, record: object, attribute: str, *, epoch_is_never: bool = False,
               dotnet_min_is_never: bool = False) -> datetime | None:
        """An ISO 8601 string (how every JSON API here writes times). Numbers are not guessed at."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.add(record, attribute, f"expected an ISO 8601 time, got {_shown(value)}")
            return None
        return self.checked(lambda: from_iso8601(value, epoch_is_never=epoch_is_never,
                                                 dotnet_min_is_never=dotnet_min_is_never), record, attribute)

    def epoch(self, value: object, record: object, attribute: str) -> datetime | None:
        """Unix seconds as a JSON number (Slack)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(record, attribute, f"expected Unix seconds, got {_shown(value)}")
            return None
        return self.checked(lambda: from_unix(value), record, attribute)

    def activity(self, data: Mapping[str, Any], attribute: str, record: object, *, null_is_never: bool,
                 epoch_is_never: bool = False) -> dict[str, Any]:
        """Account keywords for last use read from one ISO 8601 attribute. Absent (a projection), unreadable,
        or null where the vendor does not document null as "never": activity unknown."""
        value = data.get(attribute)
        before = len(self)
        moment = self.moment(value, record, attribute, epoch_is_never=epoch_is_never)
        said = attribute in data and (value is not None or null_is_never)
        if not said:
            self.missing(record, attribute, "activity unknown")
        known = said and len(self) == before
        return {"activity_known": known, "activity_unknown_reason": None if known else f"{attribute} absent or "
                "unreadable", "last_activity_at": moment if known else None, "last_activity_attribute": attribute,
                "last_activity_raw": str(value) if value else None}

    def checked(self, parse: Callable[[], datetime | None], record: object, attribute: str) -> datetime | None:
        """Run a time parser; an unreadable or implausible time is noted and read as unknown."""
        try:
            moment = parse()
            return check_plausible(moment) if moment is not None else None
        except (TimeFormatError, ValueError, OverflowError) as exc:
            self.add(record, attribute, str(exc))
            return None

    # ---- reporting ----

    def warnings(self) -> list[str]:
        lines = [str(u) for u in self.unreadable[:MAX_LISTED]]
        if len(self.unreadable) > MAX_LISTED:
            counts: dict[str, int] = defaultdict(int)
            for u in self.unreadable[MAX_LISTED:]:
                counts[u.attribute] += 1
            listed = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
            lines.append(f"{len(self.unreadable) - MAX_LISTED} more unreadable value(s) not listed ({listed})")
        for attribute, count in self.absent.items():
            first = ", ".join(self._absent_first[attribute]) + (", ..." if count > 3 else "")
            lines.append(f"{count} record(s) have no {attribute}: {self._absent_meaning[attribute]} "
                         f"for them ({first})")
        return lines


def record_name(item: object) -> str:
    """How a user finds a record again: its DN, id, login or name, or the start of its text."""
    if isinstance(item, Mapping):
        for key in ("dn", "userPrincipalName", "userName", "login", "primaryEmail", "name", "id"):
            if isinstance(item.get(key), str | int):
                return str(item[key])[:200]
    dn = getattr(item, "dn", None)
    return str(dn)[:200] if isinstance(dn, str) else repr(item)[:60]


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
