"""Source type ``csv``: any system's user export (and optional change-log export) with a declared mapping."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent
from auditor.timeconv import parse_timestamp
from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType, StrList
from connectors.values import ValueProblems

# A long value (a 128 KB description) is a value, not a reason to stop reading: the csv module's default
# limit is 128 KiB per field.
csv.field_size_limit(16 << 20)

_TRUE = ("true", "yes", "y", "1", "active", "enabled")
_FALSE = ("false", "no", "n", "0", "inactive", "disabled", "suspended", "deactivated", "locked")


class CsvColumns(BaseModel):
    """Header names in the export for each inventory field; unmapped fields are "not known"."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    username: str
    enabled: str
    email: str | None = None
    display_name: str | None = None
    kind: str | None = None
    created_at: str | None = None
    expires_at: str | None = None
    # mapped: an empty cell is "never used", an unreadable one "activity unknown"; unmapped: activity unknown
    last_activity_at: str | None = None
    password_last_set_at: str | None = None
    groups: str | None = None
    privileged: str | None = None
    mfa_registered: str | None = None
    mfa_enforced: str | None = None
    employee_id: str | None = None


class CsvEventColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    at: str
    account_id: str
    action: str
    username: str | None = None
    actor: str | None = None


class CsvConfig(SourceConfig):
    type: Literal["csv"]
    path: Path = Field(strict=False)
    columns: CsvColumns
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    date_format: str = "iso8601"  # iso8601 | filetime | generalized | unix | a strftime pattern
    true_values: StrList = _TRUE
    false_values: StrList = _FALSE
    group_separator: str = ";"
    kind_map: dict[str, Literal["human", "service", "guest", "machine", "bot", "unknown"]] = Field(default_factory=dict)
    activity_attribute: str | None = None  # how the export's system records activity, for evidence
    events_path: Path | None = Field(default=None, strict=False)
    event_columns: CsvEventColumns | None = None
    action_map: dict[str, Literal[
        "created", "deleted", "enabled", "disabled", "password_reset", "modified", "group_changed"]] = Field(
        default_factory=dict)


def _rows(
    path: Path, config: CsvConfig, required: list[str], problems: ValueProblems,
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every well-formed row. A row with more or fewer fields than the header, or a
    quote never closed (which would swallow every later row), is a bad record: listed, not audited."""
    try:
        text = path.read_bytes().decode(config.encoding)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"{path}: cannot decode as {config.encoding}: {exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=config.delimiter, strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise SourceError(f"{path}: the header line is not CSV: {exc}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise SourceError(f"{path}: column(s) not in the header: {', '.join(missing)}")
    rows = []
    start = reader.line_num + 1
    try:
        for row in reader:
            extra = row.pop(None, None)  # DictReader puts surplus fields here
            if extra is not None or None in row.values():  # and missing ones are None
                found = len(header) + len(extra) if extra is not None else sum(v is not None for v in row.values())
                problems.bad_record(f"{path.name} line {start}", f"{len(header)} fields expected, {found} found")
            else:
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        why = " (a quote opened here is never closed)" if "end of data" in str(exc) else ""
        problems.bad_record(f"{path.name} line {start}", f"{exc}{why}: this row and every line after it are not "
                            "audited")
    return rows


def collect(config: CsvConfig, context: CollectContext) -> SourceResult:
    cols = config.columns
    mapped = [v for v in cols.model_dump().values() if v]
    problems = ValueProblems()
    rows = _rows(config.path, config, mapped, problems)
    truthy = {v.lower() for v in config.true_values}
    falsy = {v.lower() for v in config.false_values}

    def boolean(row: dict[str, str], column: str | None, line: int) -> bool | None:
        if column is None or not row[column].strip():
            return None
        value = row[column].strip().lower()
        if value in truthy:
            return True
        if value in falsy:
            return False
        problems.add(f"row {line}", column, f"{row[column][:40]!r} is neither a true nor a false value")
        return None

    def moment(row: dict[str, str], column: str | None, line: int) -> datetime | None:
        if column is None:
            return None
        return problems.checked(partial(parse_timestamp, row[column], config.date_format), f"row {line}", column)

    accounts: list[Account] = []
    for line, row in rows:
        enabled = boolean(row, cols.enabled, line)
        if enabled is None and not row[cols.enabled].strip():
            problems.missing(f"row {line}", cols.enabled, "enabled state unknown")
        before = len(problems)
        last_activity = moment(row, cols.last_activity_at, line)
        # An unreadable cell (or date_format) says nothing about use: unknown, never "never used".
        activity_known = cols.last_activity_at is not None and len(problems) == before
        kind = AccountKind.HUMAN
        if cols.kind:
            kind_text = config.kind_map.get(row[cols.kind].strip()) or row[cols.kind].strip().lower()
            kind = AccountKind(kind_text) if kind_text in AccountKind._value2member_map_ else AccountKind.UNKNOWN
        privileged = boolean(row, cols.privileged, line)
        raw = {k: row[k] for k in mapped if row.get(k)}
        accounts.append(Account(
            source=config.name, id=row[cols.id].strip(), username=row[cols.username].strip(),
            enabled=enabled,
            email=row[cols.email].strip() or None if cols.email else None,
            display_name=row[cols.display_name].strip() or None if cols.display_name else None,
            kind=kind, created_at=moment(row, cols.created_at, line), expires_at=moment(row, cols.expires_at, line),
            activity_known=activity_known,
            activity_unknown_reason=None if activity_known else f"{cols.last_activity_at} unreadable"
            if cols.last_activity_at else "export has no last-activity column",
            last_activity_at=last_activity,
            last_activity_attribute=config.activity_attribute or cols.last_activity_at,
            last_activity_raw=row[cols.last_activity_at] or None if cols.last_activity_at else None,
            password_last_set_at=moment(row, cols.password_last_set_at, line),
            mfa_registered=boolean(row, cols.mfa_registered, line),
            mfa_enforced=boolean(row, cols.mfa_enforced, line),
            privileged=bool(privileged),
            privilege_evidence=[f"{cols.privileged}={row[cols.privileged]}"] if privileged and cols.privileged else [],
            groups=[g.strip() for g in row[cols.groups].split(config.group_separator) if g.strip()]
            if cols.groups else [],
            identifiers={"employee_id": row[cols.employee_id]} if cols.employee_id and row[cols.employee_id] else {},
            raw=raw,
        ))
    events = _events(config, problems)
    return SourceResult(accounts=accounts, change_events=events, warnings=problems.warnings(),
                        partial_error=problems.partial_error())


def _events(config: CsvConfig, problems: ValueProblems) -> list[ChangeEvent]:
    if config.events_path is None:
        return []
    if config.event_columns is None:
        raise SourceError("events_path is set but event_columns is not")
    cols = config.event_columns
    rows = _rows(config.events_path, config, [v for v in cols.model_dump().values() if v], problems)
    unmapped: Counter[str] = Counter()
    events = []
    for line, row in rows:
        action_text = row[cols.action].strip()
        action = config.action_map.get(action_text) or (
            action_text.lower() if action_text.lower() in ChangeAction._value2member_map_ else None)
        if action is None:
            unmapped[action_text] += 1
            continue
        when = problems.checked(partial(parse_timestamp, row[cols.at], config.date_format),
                                f"{config.events_path.name} row {line}", cols.at)
        if when is None:
            continue
        events.append(ChangeEvent(
            source=config.name, at=when, account_id=row[cols.account_id].strip(), action=ChangeAction(action),
            username=row[cols.username].strip() or None if cols.username else None,
            actor=row[cols.actor].strip() or None if cols.actor else None, detail=action_text,
        ))
    if unmapped:
        listed = ", ".join(f"{k!r} ({n})" for k, n in unmapped.most_common(5))
        problems.add(config.events_path.name, cols.action, f"actions not in action_map, not counted: {listed}")
    return events


SOURCE_TYPE = SourceType("csv", "Any system's CSV export with a declared column mapping", CsvConfig, collect)
