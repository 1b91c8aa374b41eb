"""Run history in an embedded SQLite database: snapshots, change events, KPIs and findings per run.

A run is recorded in one transaction at its end, so a process killed at any moment leaves the
earlier history as it was (SQLite's journal rolls back the unfinished transaction on next open).
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.model import (
    Account,
    ChangeAction,
    ChangeEvent,
    DepartedAccount,
    account_from_jsonable,
    to_jsonable,
)
from auditor.secrets import scrub_bytes, scrub_text
from auditor.timeconv import from_iso8601, to_iso

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, as_of TEXT NOT NULL, generated_at TEXT NOT NULL, tool_version TEXT NOT NULL,
    complete INTEGER NOT NULL, sources TEXT NOT NULL, kpis TEXT NOT NULL, findings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL REFERENCES runs(id), source TEXT NOT NULL, as_of TEXT NOT NULL, accounts BLOB NOT NULL,
    PRIMARY KEY (run_id, source)
);
CREATE INDEX IF NOT EXISTS snapshots_by_source ON snapshots (source, as_of);
CREATE TABLE IF NOT EXISTS change_events (
    source TEXT NOT NULL, at TEXT NOT NULL, account_id TEXT NOT NULL, action TEXT NOT NULL,
    username TEXT, actor TEXT, origin TEXT NOT NULL, detail TEXT, approximate INTEGER NOT NULL,
    PRIMARY KEY (source, account_id, action, at)
);
CREATE INDEX IF NOT EXISTS change_events_by_time ON change_events (at);
CREATE TABLE IF NOT EXISTS run_files (
    run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS departures (
    source TEXT NOT NULL, account_id TEXT NOT NULL, missing_since TEXT NOT NULL, last_seen TEXT,
    account TEXT NOT NULL, PRIMARY KEY (source, account_id)
);
CREATE TABLE IF NOT EXISTS run_results (
    run_id TEXT PRIMARY KEY REFERENCES runs(id), data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS source_state (
    run_id TEXT NOT NULL REFERENCES runs(id), source TEXT NOT NULL, as_of TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (run_id, source)
);
"""


class HistoryError(Exception):
    """The history database cannot be opened or read; the message names the file."""


@dataclass(frozen=True)
class RunRecord:
    id: str
    as_of: datetime
    generated_at: datetime
    tool_version: str
    complete: bool
    sources: list[dict[str, Any]]
    kpis: dict[str, Any]
    findings: list[dict[str, Any]]


@dataclass
class PastAudit:
    """What earlier audits left that this one needs, read in one go before anything is collected."""

    snapshots: dict[str, tuple[datetime, list[Account]]]  # the latest complete snapshot of each source
    states: dict[str, dict[str, str]]  # what each source's last complete read saved for the next (delta links)
    events: list[ChangeEvent]  # change events recorded in the look-back window
    runs: list[RunRecord]  # complete runs before this audit, oldest first (trends, "since the previous audit")
    # For the authoritative source of the identity graph (when there is one): when did people leave?
    departures: list[DepartedAccount]
    leaving_events: list[ChangeEvent]  # every recorded disable and delete, however old
    snapshot_times: list[datetime]


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                # Snapshots hold personal data: owner-only from the first byte.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise HistoryError(f"{path}: written by a newer version of the auditor (schema {row[0]})")
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"{path}: cannot open the history database: {exc}") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._db
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot read the history database: {exc}") from None

    def read_past(self, as_of: datetime, sources: Iterable[str], authority: str | None,
                  events_since: datetime) -> PastAudit:
        """The one question an audit asks its history, in one read transaction (one consistent view)."""
        with self._reading() as db:
            db.execute("BEGIN")
            try:
                snapshots = {s: snap for s in sources if (snap := self.previous_snapshot(s, as_of)) is not None}
                states = {s: state for s in sources if (state := self.previous_state(s, as_of))}
                leaving = (ChangeAction.DISABLED, ChangeAction.DELETED)
                return PastAudit(
                    snapshots, states, self.events_between(events_since, as_of),
                    [r for r in self.runs(before=as_of) if r.complete],
                    self.departures(authority, as_of) if authority else [],
                    self.account_events(authority, leaving, as_of) if authority else [],
                    self.snapshot_times(authority, as_of) if authority else [],
                )
            finally:
                db.execute("COMMIT")

    def previous_snapshot(self, source: str, before: datetime) -> tuple[datetime, list[Account]] | None:
        """The latest complete snapshot of ``source`` taken as of a time before ``before``."""
        with self._reading() as db:
            row = db.execute(
                "SELECT as_of, accounts FROM snapshots WHERE source=? AND as_of<? ORDER BY as_of DESC LIMIT 1",
                (source, to_iso(before)),
            ).fetchone()
        if row is None:
            return None
        accounts = [account_from_jsonable(a) for a in json.loads(zlib.decompress(row[1]))]
        return from_iso8601(row[0]) or before, accounts

    def previous_state(self, source: str, before: datetime) -> dict[str, str]:
        """What the latest complete read of ``source`` before ``before`` saved for the next one (delta links)."""
        with self._reading() as db:
            row = db.execute(
                "SELECT state FROM source_state WHERE source=? AND as_of<? ORDER BY as_of DESC LIMIT 1",
                (source, to_iso(before)),
            ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def events_between(self, start: datetime, end: datetime) -> list[ChangeEvent]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT source, at, account_id, action, username, actor, origin, detail, approximate "
                "FROM change_events WHERE at>? AND at<=? ORDER BY at", (to_iso(start), to_iso(end)),
            ).fetchall()
        return [self._event(r) for r in rows]

    @staticmethod
    def _event(r: tuple[Any, ...]) -> ChangeEvent:
        return ChangeEvent(source=r[0], at=from_iso8601(r[1]) or datetime.min, account_id=r[2],
                           action=ChangeAction(r[3]), username=r[4], actor=r[5], origin=r[6], detail=r[7],
                           approximate_time=bool(r[8]))

    def account_events(self, source: str, actions: Iterable[ChangeAction], before: datetime) -> list[ChangeEvent]:
        """Every recorded event of these kinds for one source, however old (when did this account leave?)."""
        wanted = [a.value for a in actions]
        with self._reading() as db:
            rows = db.execute(
                "SELECT source, at, account_id, action, username, actor, origin, detail, approximate "
                "FROM change_events WHERE source=? AND at<=? AND action IN (SELECT value FROM json_each(?))",
                (source, to_iso(before), json.dumps(wanted)),
            ).fetchall()
        return [self._event(r) for r in rows]

    def departures(self, source: str, before: datetime) -> list[DepartedAccount]:
        """Accounts of ``source`` that earlier audits saw disappear, with their last known state."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT missing_since, last_seen, account FROM departures WHERE source=? AND missing_since<?",
                (source, to_iso(before))).fetchall()
        return [DepartedAccount(account_from_jsonable(json.loads(r[2])), from_iso8601(r[0]) or before,
                                from_iso8601(r[1]) if r[1] else None) for r in rows]

    def snapshot_times(self, source: str, before: datetime) -> list[datetime]:
        """As-of times of the complete snapshots of ``source`` taken before ``before``, oldest first."""
        with self._reading() as db:
            rows = db.execute("SELECT as_of FROM snapshots WHERE source=? AND as_of<? ORDER BY as_of",
                              (source, to_iso(before))).fetchall()
        return [moment for (text,) in rows if (moment := from_iso8601(text)) is not None]

    def run_files(self, run_id: str) -> dict[str, bytes]:
        with self._reading() as db:
            rows = db.execute("SELECT name, data FROM run_files WHERE run_id=?", (run_id,)).fetchall()
        return {name: zlib.decompress(data) for name, data in rows}

    def run_result(self, run_id: str) -> str | None:
        """The scored result of a run (see ``auditor.result_store``); None for runs recorded without one."""
        with self._reading() as db:
            row = db.execute("SELECT data FROM run_results WHERE run_id=?", (run_id,)).fetchone()
        return zlib.decompress(row[0]).decode("utf-8") if row else None

    def runs(self, before: datetime | None = None) -> list[RunRecord]:
        """Complete runs, oldest first (for trends and "since the previous audit")."""
        query = "SELECT id, as_of, generated_at, tool_version, complete, sources, kpis, findings FROM runs"
        params: tuple[str, ...] = ()
        if before is not None:
            query += " WHERE as_of<?"
            params = (to_iso(before) or "",)
        with self._reading() as db:
            rows = db.execute(query + " ORDER BY as_of", params).fetchall()
        return [
            RunRecord(r[0], from_iso8601(r[1]) or datetime.min, from_iso8601(r[2]) or datetime.min, r[3],
                      bool(r[4]), json.loads(r[5]), json.loads(r[6]), json.loads(r[7]))
            for r in rows
        ]

    def record_run(
        self, run: RunRecord, snapshots: dict[str, list[Account]], events: Iterable[ChangeEvent],
        states: dict[str, dict[str, str]] | None = None, files: dict[str, bytes] | None = None,
        departures: Iterable[DepartedAccount] = (), result: str | None = None,
    ) -> None:
        """Store a finished run atomically: all of it, or (if the process dies) none of it."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            # Every text stored passes the redaction boundary (scrub): the history leaves the process too.
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, to_iso(run.as_of), to_iso(run.generated_at), run.tool_version, int(run.complete),
                 _json(run.sources), _json(run.kpis), _json(run.findings)),
            )
            for source, accounts in snapshots.items():
                blob = zlib.compress(_json(to_jsonable(accounts)).encode("utf-8"), 6)
                self._db.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?)", (run.id, source, to_iso(run.as_of), blob))
            for name, data in (files or {}).items():  # the run's evidence, for bundles made later
                self._db.execute("INSERT INTO run_files VALUES (?, ?, ?)",
                                 (run.id, name, zlib.compress(scrub_bytes(data), 6)))
            if result is not None:  # the scored result: what every output of the run was rendered from
                self._db.execute("INSERT INTO run_results VALUES (?, ?)",
                                 (run.id, zlib.compress(scrub_text(result).encode("utf-8"), 6)))
            for source, state in (states or {}).items():
                self._db.execute("INSERT INTO source_state VALUES (?, ?, ?, ?)",
                                 (run.id, source, to_iso(run.as_of), _json(state)))
            # Kept, unlike snapshots, for as long as the history: who left, and what they could still reach.
            self._db.executemany(
                "INSERT OR IGNORE INTO departures VALUES (?, ?, ?, ?, ?)",
                [(d.account.source, d.account.id, to_iso(d.missing_since), to_iso(d.last_seen),
                  _json(to_jsonable(d.account))) for d in departures],
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO change_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.source, to_iso(e.at), e.account_id, e.action.value, _text(e.username), _text(e.actor), e.origin,
                  _text(e.detail), int(e.approximate_time)) for e in events],
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise HistoryError(f"{self.path}: cannot record the run: {exc}") from None


def _json(value: Any) -> str:
    return scrub_text(json.dumps(value))


def _text(value: str | None) -> str | None:
    return None if value is None else scrub_text(value)
