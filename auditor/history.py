"""Run history in an embedded SQLite database: snapshots, change events, KPIs and findings per run.

A run is recorded in one transaction at its end, so a process killed at any moment leaves the
earlier history as it was (SQLite's journal rolls back the unfinished transaction on next open).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from auditor import jsonio, list_delta, snapshot_delta
from auditor.deflate import Deflater
from auditor.jsonio import Streamed
from auditor.model import (
    Account,
    ChangeAction,
    ChangeEvent,
    DepartedAccount,
    ReviewCampaign,
    ReviewDecision,
    ReviewPacket,
    account_from_jsonable,
)
from auditor.secrets import scrub_bytes, scrub_stream, scrub_text
from auditor.timeconv import from_iso8601, to_iso

# 2: snapshots as deltas (base_run, depth); open findings in run_findings; outputs rendered again from the
# stored result instead of kept as copies (run_outputs names them). Version 1 histories are read as they are.
# 3: access-review campaigns, their packets and decisions (new tables only).
# 4: a stored result's change events kept apart in run_events, as a delta from the previous run's (list_delta);
# departed accounts compressed (rows written before stay text, and are read as such).
# 5: whole snapshots stored as JSON Lines, an account a line, read back a line at a time (JSON lists written
# before are read as they are).
SCHEMA_VERSION = 5
MAX_DELTA_CHAIN = 30  # a snapshot more deltas away from a whole copy than this is stored whole
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
DROP INDEX IF EXISTS change_events_by_time;
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
CREATE TABLE IF NOT EXISTS run_findings (
    run_id TEXT PRIMARY KEY REFERENCES runs(id), data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT PRIMARY KEY REFERENCES runs(id), data BLOB NOT NULL, base_run TEXT, depth INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS run_outputs (
    run_id TEXT PRIMARY KEY REFERENCES runs(id), names TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS review_campaigns (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, created_at TEXT NOT NULL, by TEXT NOT NULL, unassigned TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS review_packets (
    campaign_id TEXT NOT NULL REFERENCES review_campaigns(id), packet_id TEXT NOT NULL, reviewer TEXT NOT NULL,
    digest TEXT NOT NULL, accounts TEXT NOT NULL, PRIMARY KEY (campaign_id, packet_id)
);
CREATE TABLE IF NOT EXISTS review_decisions (
    campaign_id TEXT NOT NULL, packet_id TEXT NOT NULL, source TEXT NOT NULL, account_id TEXT NOT NULL,
    username TEXT NOT NULL, decision TEXT NOT NULL, comment TEXT NOT NULL, decided_at TEXT NOT NULL,
    PRIMARY KEY (campaign_id, packet_id, source, account_id)
);
CREATE TABLE IF NOT EXISTS source_state (
    run_id TEXT NOT NULL REFERENCES runs(id), source TEXT NOT NULL, as_of TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (run_id, source)
);
"""


# How a stored result names a source's accounts it left to the run's snapshot, and its change events it left to
# run_events (see auditor.result_store).
SNAPSHOT_KEY = "from_snapshot"
EVENTS_KEY = "from_run_events"
_REFERENCES = (f'"{SNAPSHOT_KEY}"'.encode(), f'"{EVENTS_KEY}"'.encode())  # keys: in a string their quotes are escaped


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


@dataclass(frozen=True)
class StoredSnapshot:
    """A source's latest complete snapshot as the next audit compares with it: read when it is compared, once, as
    each account's stored encoding in the snapshot's order (the directory's accounts are not held a second time,
    nor a digest of each while the directory is read)."""

    run_id: str
    items: Callable[[], Iterator[tuple[str, bytes]]] = field(repr=False, compare=False)  # (id, encoding) in order

    def compared(self, current: Sequence[Account]) -> tuple[snapshot_delta.Comparison, list[Account]]:
        """The snapshot against ``current``, and its accounts that differ from theirs there or are gone."""
        comparison, differing = snapshot_delta.compare_stored(self.items(), current)
        return comparison, [account_from_jsonable(jsonio.loads(line)) for line in differing]

    @property
    def digests(self) -> dict[str, bytes]:
        """The digest of each account's stored encoding by id, in the snapshot's order (read again each time)."""
        return {account_id: snapshot_delta.digest(line) for account_id, line in self.items()}

    def accounts(self, ids: Collection[str]) -> list[Account]:
        """The accounts whose ids are ``ids``, in the snapshot's order."""
        return [account_from_jsonable(jsonio.loads(line)) for account_id, line in self.items() if account_id in ids]


@dataclass
class PastAudit:
    """What earlier audits left that this one needs, read in one go before anything is collected (the snapshots'
    accounts only when they are compared)."""

    snapshots: dict[str, tuple[datetime, StoredSnapshot]]  # the latest complete snapshot of each source
    snapshot_bases: dict[str, tuple[str, int]]  # run id and delta depth of each of those snapshots
    states: dict[str, dict[str, str]]  # what each source's last complete read saved for the next (delta links)
    events: list[ChangeEvent]  # change events recorded in the look-back window
    runs: list[RunRecord]  # complete runs before this audit, oldest first (trends, "since the previous audit")
    # For the authoritative source of the identity graph (when there is one): when did people leave?
    departures: list[DepartedAccount]
    leaving_events: list[ChangeEvent]  # every recorded disable and delete, however old
    snapshot_times: list[datetime]
    previous_findings: set[str] = field(default_factory=set)  # keys of the previous complete run's open findings
    reviews: list[ReviewCampaign] = field(default_factory=list)  # access-review campaigns as they stood at as_of


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
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise HistoryError(f"{path}: written by a newer version of the auditor (schema {row[0]})")
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(snapshots)")}
            if "base_run" not in columns:  # version 1: every snapshot whole
                self._db.execute("ALTER TABLE snapshots ADD COLUMN base_run TEXT")
                self._db.execute("ALTER TABLE snapshots ADD COLUMN depth INTEGER NOT NULL DEFAULT 0")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
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
                latest = {s: row for s in sources if (row := self._latest_snapshot(s, as_of)) is not None}
                snapshots = {s: (moment, self.stored_snapshot(run, s)) for s, (run, moment, _) in latest.items()}
                states = {s: state for s in sources if (state := self.previous_state(s, as_of))}
                leaving = (ChangeAction.DISABLED, ChangeAction.DELETED)
                runs = [r for r in self.runs(before=as_of) if r.complete]
                return PastAudit(
                    snapshots, {s: (run, depth) for s, (run, _, depth) in latest.items()}, states,
                    self.events_between(events_since, as_of), runs,
                    self.departures(authority, as_of) if authority else [],
                    self.account_events(authority, leaving, as_of) if authority else [],
                    self.snapshot_times(authority, as_of) if authority else [],
                    self.open_finding_keys(runs[-1].id) if runs else set(),
                    [dataclasses.replace(c, packets=[dataclasses.replace(p, decisions=[
                        d for d in p.decisions if d.decided_at <= as_of]) for p in c.packets])
                     for c in self.review_campaigns() if c.created_at <= as_of],
                )
            finally:
                db.execute("COMMIT")

    def previous_snapshot(self, source: str, before: datetime) -> tuple[datetime, list[Account]] | None:
        """The latest complete snapshot of ``source`` taken as of a time before ``before``."""
        latest = self._latest_snapshot(source, before)
        return None if latest is None else (latest[1], self.snapshot_accounts(latest[0], source))

    def _latest_snapshot(self, source: str, before: datetime) -> tuple[str, datetime, int] | None:
        """(run id, as-of, delta depth) of the latest snapshot of ``source`` before ``before``."""
        with self._reading() as db:
            row = db.execute(
                "SELECT run_id, as_of, depth FROM snapshots WHERE source=? AND as_of<? ORDER BY as_of DESC LIMIT 1",
                (source, to_iso(before)),
            ).fetchone()
        return None if row is None else (row[0], from_iso8601(row[1]) or before, int(row[2]))

    def snapshot_accounts(self, run_id: str, source: str) -> list[Account]:
        """The accounts of ``source`` as run ``run_id`` read them: its whole copy, or the deltas back to one."""
        return [account_from_jsonable(jsonio.loads(line)) for _, line in self._snapshot_items(run_id, source)]

    def stored_snapshot(self, run_id: str, source: str) -> StoredSnapshot:
        """The snapshot, read when it is compared (each read one consistent view of it: ``_chain``)."""
        return StoredSnapshot(run_id, lambda: self._snapshot_items(run_id, source))

    def _snapshot_items(self, run_id: str, source: str) -> Iterator[tuple[str, bytes]]:
        """(id, stored encoding) of each account of the snapshot, in order: the whole copy read a piece at a time,
        the deltas since made on the way."""
        blobs = self._chain("SELECT accounts, base_run FROM snapshots WHERE run_id=? AND source=?", run_id, source,
                            damaged=f"the snapshot of {source} in run {run_id} is damaged")
        items: Iterator[tuple[str, bytes]] = ((_account_id(line), line) for line in _whole_lines(blobs.pop()))
        while blobs:
            items = snapshot_delta.apply_stream(items, jsonio.loads(zlib.decompress(blobs.pop())), jsonio.dumps)
        return items

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
                "FROM change_events WHERE at>? AND at<=? ORDER BY at, rowid", (to_iso(start), to_iso(end)),
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
        return [DepartedAccount(account_from_jsonable(jsonio.loads(zlib.decompress(r[2]) if isinstance(r[2], bytes)
                                                                   else r[2])),  # text: written before schema 4
                                from_iso8601(r[0]) or before, from_iso8601(r[1]) if r[1] else None) for r in rows]

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

    def run_result(self, run_id: str) -> bytes | None:
        """The scored result of a run (see ``auditor.result_store``), whole: the accounts it stored by reference
        to the run's snapshots put back in place. None for runs recorded without one."""
        document = self.run_document(run_id)
        if document is None or isinstance(document, bytes):
            return document
        inventory = document["result"]["inventory"]
        for segment in inventory["accounts"]:
            segment["accounts"] = [orjson.Fragment(a) if isinstance(a, bytes) else a for a in segment["accounts"]]
        if isinstance(inventory.get("change_events"), list):
            inventory["change_events"] = [orjson.Fragment(e) if isinstance(e, bytes) else e
                                          for e in inventory["change_events"]]
        return jsonio.dumps(document)

    def run_document(self, run_id: str) -> dict[str, Any] | bytes | None:
        """:meth:`run_result` as its JSON text when it stored everything in place, else read, with each change
        event left as the JSON text the history keeps of it and each account it stored by reference to a snapshot
        as the snapshot's text of it, read from the snapshot as it is asked for (the snapshot is fetched here):
        ``auditor.result_store.decode_result`` reads each when it reaches it. At 100,000 accounts, reading them
        all first held a gigabyte of dicts; making them accounts and writing the whole again cost twice that."""
        with self._reading() as db:
            row = db.execute("SELECT data FROM run_results WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        data = zlib.decompress(row[0])
        if not any(reference in data for reference in _REFERENCES):
            return data
        document: dict[str, Any] = jsonio.loads(data)
        del data
        inventory = document["result"]["inventory"]
        for segment in inventory["accounts"]:
            if segment.pop(SNAPSHOT_KEY, None):
                segment["accounts"] = (line for _, line in self._snapshot_items(run_id, segment["source"]))
        if isinstance(inventory.get("change_events"), dict) and inventory["change_events"].get(EVENTS_KEY):
            inventory["change_events"] = self.run_events(run_id)
        return document

    def run_events(self, run_id: str) -> list[bytes]:
        """The change events a run's result holds, each as its stored JSON: from their whole copy and the deltas
        back to it."""
        blobs = self._event_blobs(run_id)
        events = list_delta.items_of(zlib.decompress(blobs.pop()))
        while blobs:
            events = list_delta.apply(events, zlib.decompress(blobs.pop()))
        return events

    def _event_blobs(self, run_id: str) -> list[bytes]:
        """A run's stored event list and those it is a delta from, the whole copy last."""
        return self._chain("SELECT data, base_run FROM run_events WHERE run_id=?", run_id,
                           damaged=f"the change events of run {run_id} are damaged")

    def _chain(self, query: str, run_id: str, *key: str, damaged: str) -> list[bytes]:
        """The blob ``query`` selects for ``run_id`` (and ``key``) and those it is a delta from (each row's
        base_run), the whole copy last; read as one consistent view (a prune may make a delta whole meanwhile)."""
        blobs: list[bytes] = []
        with self._reading() as db:
            own = not db.in_transaction
            if own:
                db.execute("BEGIN")
            try:
                run: str | None = run_id
                while run is not None:
                    row = db.execute(query, (run, *key)).fetchone()
                    if row is None or len(blobs) > 10 * MAX_DELTA_CHAIN:
                        raise HistoryError(f"{self.path}: {damaged} (its base {run} is missing)")
                    blobs.append(row[0])
                    run = row[1]
            finally:
                if own:
                    db.execute("COMMIT")
        return blobs

    def rendered_outputs(self, run_id: str) -> list[str] | None:
        """Names of the files a run rendered from its result and did not store (None: it stored them all)."""
        with self._reading() as db:
            row = db.execute("SELECT names FROM run_outputs WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def open_finding_keys(self, run_id: str) -> set[str]:
        """Keys of the open findings a run reported (``Finding.key``)."""
        with self._reading() as db:
            row = db.execute("SELECT data FROM run_findings WHERE run_id=?", (run_id,)).fetchone()
            data = zlib.decompress(row[0]) if row else \
                db.execute("SELECT findings FROM runs WHERE id=?", (run_id,)).fetchone()[0].encode("utf-8")
        if not data.startswith(b'[{"key":'):  # written otherwise (or none): parsed whole
            return {f["key"] for f in jsonio.loads(data)}
        # Only the keys are read: each summary parsed whole, a million findings' dicts were freed among the keys
        # kept and left the audit some 200 MB larger from its start.
        return {_json_string(match[1]) for match in _KEY_PREFIX.finditer(data)}

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

    def prune(self, keep_runs: int | None, keep_days: int | None, now: datetime, events_window: timedelta,
              *, dry_run: bool = False) -> Pruned:
        """Remove the runs neither setting keeps, in one transaction, so that every kept run still renders,
        bundles and trends as before and the next audit still finds what it compares with.

        A run is kept when it is one of the ``keep_runs`` newest, or no older than ``keep_days``, or when it holds
        a source's latest snapshot or saved read state (the next audit's diff and delta link). A kept snapshot
        that was a delta from a removed one is stored whole first. Change events older than the oldest kept
        run's look-back (``events_window``) go too, except disables and deletes: when people left is read
        however old (departures stay for the life of the history)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")  # what is kept is decided in the transaction that removes the rest
            runs = [(r[0], from_iso8601(r[1]) or now) for r in db.execute("SELECT id, as_of FROM runs ORDER BY as_of")]
            kept = {run for run, _ in runs[-keep_runs:]} if keep_runs else set()
            if keep_days is not None:
                kept |= {run for run, as_of in runs if as_of >= now - timedelta(days=keep_days)}
            if keep_runs is None and keep_days is None:
                kept = {run for run, _ in runs}
            for table in ("snapshots", "source_state"):  # the latest of each source (table names: constants)
                kept |= {r[0] for r in db.execute(
                    f"SELECT run_id FROM {table} t "  # noqa: S608
                    f"WHERE as_of=(SELECT max(as_of) FROM {table} WHERE source=t.source)")}
            removed = [run for run, _ in runs if run not in kept]
            if not removed or dry_run:
                db.execute("ROLLBACK")
                return Pruned(removed, 0, 0, 0)
            gone = json.dumps(removed)
            rebase = db.execute("SELECT run_id, source FROM snapshots WHERE base_run IN "
                                "(SELECT value FROM json_each(?)) AND run_id NOT IN (SELECT value FROM json_each(?))",
                                (gone, gone)).fetchall()
            for run, source in rebase:  # whole again, before its base goes
                lines = jsonio.batched(line for _, line in self._snapshot_items(run, source))
                whole = _blob(b"".join(line + b"\n" for line in batch) for batch in lines)
                db.execute("UPDATE snapshots SET accounts=?, base_run=NULL, depth=0 WHERE run_id=? AND source=?",
                           (whole, run, source))
            rebase_events = [r[0] for r in db.execute(
                "SELECT run_id FROM run_events WHERE base_run IN (SELECT value FROM json_each(?)) "
                "AND run_id NOT IN (SELECT value FROM json_each(?))", (gone, gone))]
            for run in rebase_events:
                db.execute("UPDATE run_events SET data=?, base_run=NULL, depth=0 WHERE run_id=?",
                           (zlib.compress(list_delta.whole(self.run_events(run)), 6), run))  # scrubbed: items
            for table in _PER_RUN_TABLES:  # names are constants
                db.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT value FROM json_each(?))", (gone,))  # noqa: S608
            db.execute("DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))", (gone,))
            oldest = min((as_of for run, as_of in runs if run in kept), default=now)
            events = db.execute(
                "DELETE FROM change_events WHERE at<? AND action NOT IN (?, ?)",
                (to_iso(oldest - events_window), ChangeAction.DISABLED.value, ChangeAction.DELETED.value)).rowcount
            db.execute("COMMIT")
        except (sqlite3.Error, HistoryError) as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise HistoryError(f"{self.path}: cannot prune the history: {exc}") from None
        return Pruned(removed, len(rebase), events, len(rebase_events))

    def compact(self) -> None:
        """Give the space of removed rows back to the file system (SQLite keeps it for reuse otherwise)."""
        try:
            self._db.execute("VACUUM")
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot compact the history: {exc}") from None

    def record_run(
        self, run: RunRecord, snapshots: dict[str, list[Account]], events: Iterable[ChangeEvent],
        states: dict[str, dict[str, str]] | None = None, files: dict[str, bytes] | None = None,
        departures: Iterable[DepartedAccount] = (), result: bytes | Iterable[bytes] | None = None,
        bases: dict[str, tuple[str, int, snapshot_delta.SnapshotChange | None]] | None = None,
        rendered: Iterable[str] = (),
        result_events: list[ChangeEvent] | None = None, open_findings: Iterable[dict[str, Any]] | None = None,
    ) -> None:
        """Store a finished run atomically: all of it, or (if the process dies) none of it.

        ``bases``: for a source, the previous snapshot (run id, delta depth, how ``snapshots`` differs from it, or
        None when no delta keeps the order): this run's is stored as that difference. ``rendered``: files of the
        run made from ``result`` and not kept as copies.
        ``result_events``: the change events ``result`` left out (``EVENTS_KEY``), stored as the difference
        from the latest run's. ``open_findings``: the run's open findings when not ``run.findings``, written as
        they come."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            # Every text stored passes the redaction boundary (scrub): the history leaves the process too.
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, to_iso(run.as_of), to_iso(run.generated_at), run.tool_version, int(run.complete),
                 _json(run.sources), _json(run.kpis), "[]"),
            )
            findings = jsonio.dumps_streamed(Streamed(run.findings if open_findings is None else open_findings))
            self._db.execute("INSERT INTO run_findings VALUES (?, ?)", (run.id, _blob(findings)))
            for source, accounts in snapshots.items():
                base = (bases or {}).get(source)
                change = base[2] if base is not None and base[1] < MAX_DELTA_CHAIN else None
                stored, base_run, depth = ((_whole(accounts), None, 0) if base is None or change is None
                                           else (change.encoded(), base[0], base[1] + 1))
                self._insert_blob("snapshots", "accounts", "INSERT INTO snapshots (run_id, source, as_of, accounts, "
                                  "base_run, depth) VALUES (?, ?, ?, zeroblob(?), ?, ?)",
                                  (run.id, source, to_iso(run.as_of)), stored, (base_run, depth))
            for name, data in (files or {}).items():  # the run's evidence, for bundles made later
                self._db.execute("INSERT INTO run_files VALUES (?, ?, ?)", (run.id, name, _blob(data)))
            if result is not None:  # the scored result: what every output of the run was rendered from
                self._insert_blob("run_results", "data", "INSERT INTO run_results VALUES (?, zeroblob(?))", (run.id,),
                                  result)
                if result_events is not None:
                    self._record_run_events(run.id, result_events)
                self._db.execute("INSERT INTO run_outputs VALUES (?, ?)", (run.id, json.dumps(sorted(rendered))))
            for source, state in (states or {}).items():
                self._db.execute("INSERT INTO source_state VALUES (?, ?, ?, ?)",
                                 (run.id, source, to_iso(run.as_of), _json(state)))
            # Kept, unlike snapshots, for as long as the history: who left, and what they could still reach.
            self._db.executemany(
                "INSERT OR IGNORE INTO departures VALUES (?, ?, ?, ?, ?)",
                ((d.account.source, d.account.id, to_iso(d.missing_since), to_iso(d.last_seen),
                  _blob(jsonio.dumps(d.account))) for d in departures),
            )
            # Rows made as they are inserted (a million accounts' events were 300 MB of rows), in the order of
            # the account ids the table's key begins with: its index is then written nearly in order, not at random
            # (a million creation events: 8.7 s against 11.9 s). Readers order what they read themselves.
            # No index by time (dropped from histories that had one): its pages were written at random, 5 of a
            # million events' 13 s, for one read a run that scans the table in 0.1 s without it.
            self._db.executemany(
                "INSERT OR IGNORE INTO change_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((e.source, to_iso(e.at), e.account_id, e.action.value, _text(e.username), _text(e.actor), e.origin,
                  _text(e.detail), int(e.approximate_time)) for e in sorted(events, key=_event_account)),
            )
            self._db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise HistoryError(f"{self.path}: cannot record the run: {exc}") from None


    def _insert_blob(self, table: str, column: str, sql: str, before: tuple[Any, ...],
                     data: bytes | Iterable[bytes], after: tuple[Any, ...] = ()) -> None:
        """Insert the row ``sql`` makes with ``zeroblob(?)`` for ``column``, then write ``data``, compressed, into
        it in place (sqlite's incremental blob I/O). The blob's size must be known first: ``data`` is compressed
        into a scratch file beside the history (owner-only, unlinked from the start: nothing is left behind),
        not memory, where a million accounts' snapshot (120 MB compressed) was held at the run's peak."""
        with tempfile.TemporaryFile(dir=self.path.parent) as scratch:
            _compress(data, scratch.write)
            cursor = self._db.execute(sql, (*before, scratch.tell(), *after))
            assert cursor.lastrowid is not None  # these tables have rowids
            scratch.seek(0)
            with self._db.blobopen(table, column, cursor.lastrowid, readonly=False) as blob:
                while piece := scratch.read(_PIECE):
                    blob.write(piece)

    def _record_run_events(self, run_id: str, events: list[ChangeEvent]) -> None:
        """Inside record_run's transaction: ``events`` whole, or as the difference from the latest run's."""
        # Each event through the boundary on its own: the delta's own lines ("=0,1000") are structure, and a
        # secret that happened to spell one must not be able to rewrite it.
        items = (scrub_bytes(jsonio.dumps(event)) for event in events)
        latest = self._db.execute(
            "SELECT e.run_id, e.depth FROM run_events e JOIN runs r ON r.id=e.run_id WHERE e.run_id<>? "
            "ORDER BY r.as_of DESC, r.generated_at DESC LIMIT 1", (run_id,)).fetchone()
        lines: Iterator[bytes]
        if latest is None or latest[1] >= MAX_DELTA_CHAIN:
            lines, base, depth = items, None, 0
        else:
            # Compared by digest with the latest run's events: neither list is held as items (at a million
            # accounts each is some 300 MB), and the lines are compressed as they come.
            lines = list_delta.delta_lines(self._event_keys(latest[0]), items, snapshot_delta.digest)
            base, depth = latest[0], latest[1] + 1
        with Deflater(_LEVEL) as deflater:
            for index, batch in enumerate(jsonio.batched(lines)):
                deflater.add((b"\n" if index else b"") + b"\n".join(batch))  # list_delta's lines, one a line
            stored = deflater.finish()
        self._db.execute("INSERT INTO run_events VALUES (?, ?, ?, ?)", (run_id, stored, base, depth))

    def _event_keys(self, run_id: str) -> list[bytes]:
        """The digests of a run's change events, in order, through the deltas back to a whole copy: no event's
        bytes are kept."""
        blobs = self._event_blobs(run_id)
        # The whole copy read a piece at a time: decompressed whole, then split, a million accounts' events were
        # 150 MB of text and as much again of items, at the end of the run where memory peaks.
        keys = [snapshot_delta.digest(item) for item in _lines(_decompressed(blobs.pop(), _PIECE))]
        while blobs:
            keys = list_delta.keys(keys, zlib.decompress(blobs.pop()), snapshot_delta.digest)
        return keys

    # ---- access reviews: kept for the life of the history, whatever retention prunes (they are evidence) ----

    def record_campaign(self, campaign: ReviewCampaign) -> None:
        with self._writing("record the review campaign") as db:
            db.execute("INSERT INTO review_campaigns VALUES (?, ?, ?, ?, ?)",
                       (campaign.id, campaign.run_id, to_iso(campaign.created_at), campaign.by,
                        _json(campaign.unassigned)))
            db.executemany("INSERT INTO review_packets VALUES (?, ?, ?, ?, ?)",
                           [(campaign.id, p.id, p.reviewer, p.digest, _json(p.accounts)) for p in campaign.packets])

    def record_decisions(self, campaign_id: str, packet_id: str, decisions: Iterable[ReviewDecision]) -> None:
        """A packet's decisions; a packet imported again replaces the decisions it carries."""
        with self._writing("record the review decisions") as db:
            db.executemany("INSERT OR REPLACE INTO review_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(campaign_id, packet_id, d.source, d.account_id, scrub_text(d.username), d.decision,
                             scrub_text(d.comment), to_iso(d.decided_at)) for d in decisions])

    def review_campaigns(self) -> list[ReviewCampaign]:
        """Every campaign, oldest first, with its packets and the decisions imported so far."""
        with self._reading() as db:
            decided: dict[tuple[str, str], list[ReviewDecision]] = {}
            for row in db.execute("SELECT campaign_id, packet_id, source, account_id, username, decision, comment, "
                                  "decided_at FROM review_decisions ORDER BY rowid"):
                decided.setdefault((row[0], row[1]), []).append(
                    ReviewDecision(row[2], row[3], row[4], row[5], row[6], self._moment(row[7])))
            packets: dict[str, list[ReviewPacket]] = {}
            for row in db.execute("SELECT campaign_id, packet_id, reviewer, digest, accounts FROM review_packets "
                                  "ORDER BY campaign_id, packet_id"):
                packets.setdefault(row[0], []).append(
                    ReviewPacket(row[1], row[2], row[3], json.loads(row[4]), decided.get((row[0], row[1]), [])))
            return [ReviewCampaign(row[0], row[1], self._moment(row[2]), row[3],
                                   packets.get(row[0], []), json.loads(row[4]))
                    for row in db.execute("SELECT id, run_id, created_at, by, unassigned FROM review_campaigns "
                                          "ORDER BY created_at, id")]

    def _moment(self, text: str) -> datetime:
        moment = from_iso8601(text)
        if moment is None:
            raise HistoryError(f"{self.path}: a stored time is unreadable: {text[:40]!r}")
        return moment

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise HistoryError(f"{self.path}: cannot {what}: {exc}") from None


@dataclass(frozen=True)
class Pruned:
    runs: list[str]  # ids of the runs removed
    rebased: int  # snapshots of kept runs stored whole again because the one they were a delta from went
    events: int  # change events removed (older than every kept run's look-back; disables and deletes stay)
    rebased_events: int  # kept runs' lists of change events stored whole again, likewise


_PER_RUN_TABLES = ("snapshots", "run_files", "run_results", "run_events", "run_findings", "run_outputs",
                   "source_state")


def _event_account(event: ChangeEvent) -> str:
    return event.account_id


def _blob(data: bytes | Iterable[bytes]) -> bytes:
    """What the history stores: scrubbed, compressed; a stream is compressed as it comes (see auditor.deflate)."""
    parts: list[bytes] = []
    _compress(data, parts.append)
    return b"".join(parts)


# zlib's level for what the history stores. Compressed in a thread while the data is made: at 6, a whole
# snapshot's compression (125 MB/s of account lines) outlasted making its lines (some 145 MB/s); at 5 it keeps up
# (159 MB/s) for 3.6% more bytes (100,000 accounts: 12.07 MB against 11.65 MB).
_LEVEL = 5


def _compress(data: bytes | Iterable[bytes], sink: Callable[[bytes], object]) -> None:
    """:func:`_blob`'s bytes given to ``sink`` in the pieces they are compressed in."""
    if isinstance(data, bytes):
        sink(zlib.compress(scrub_bytes(data), _LEVEL))
        return
    with Deflater(_LEVEL, sink=sink) as deflater:
        for chunk in scrub_stream(data):
            deflater.add(chunk)
        deflater.finish_parts()


def _whole(accounts: Iterable[Account]) -> Iterator[bytes]:
    """A snapshot stored whole: each account's encoding on a line of its own (JSON Lines), so that the next audit
    reads it back one account at a time."""
    return jsonio.dumps_lines(accounts)


_PIECE = 1 << 22  # bytes of a compressed blob's data decompressed at a time


def _whole_lines(blob: bytes, piece_size: int = _PIECE) -> Iterator[bytes]:
    """The stored encodings of a whole snapshot's accounts: its lines, or (written before schema 5) the items of
    its JSON list, encoded again as they were written."""
    pieces = _decompressed(blob, piece_size)
    first = next(pieces, b"")
    if first.startswith(b"["):
        yield from map(jsonio.dumps, jsonio.loads(first + b"".join(pieces)))
        return
    yield from _lines(itertools.chain((first,), pieces))


def _lines(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of data given in pieces (``list_delta.items_of`` of their join: none for no data)."""
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _decompressed(blob: bytes, size: int) -> Iterator[bytes]:
    """A zlib blob's data in pieces of up to ``size`` bytes. The blob is given a slice at a time: zlib copies the
    input it has not read yet (``unconsumed_tail``) at every call, and with the whole blob given at once a
    million accounts' snapshot was copied 250 times over (12 s for one read of it)."""
    decompressor = zlib.decompressobj()
    view = memoryview(blob)
    for start in range(0, len(view), _INPUT_SLICE):
        pending: bytes | memoryview = view[start:start + _INPUT_SLICE]
        while pending and not decompressor.eof:  # bytes after the stream's end stay in unconsumed_tail: not read
            if piece := decompressor.decompress(pending, size):
                yield piece
            pending = decompressor.unconsumed_tail
        if decompressor.eof:
            break
    if rest := decompressor.flush():
        yield rest


_INPUT_SLICE = 1 << 20


# An account's encoding starts with its source and id (the dataclass's first fields): the id is read without
# parsing the rest. Anything else is parsed whole.
_ID_PREFIX = re.compile(rb'\{"source":"(?:[^"\\]|\\.)*","id":("(?:[^"\\]|\\.)*")')


# A stored open finding's summary begins with its key (``AuditResult.open_finding_summaries``). ``{"`` is never
# inside a JSON string (the quote would be escaped): each match is the start of a summary.
_KEY_PREFIX = re.compile(rb'\{"key":("(?:[^"\\]|\\.)*")')


def _json_string(quoted: bytes) -> str:
    """A JSON string's value: most hold no escape, and are only decoded."""
    return quoted[1:-1].decode("utf-8") if b"\\" not in quoted else str(jsonio.loads(quoted))


def _account_id(line: bytes) -> str:
    match = _ID_PREFIX.match(line)
    return _json_string(match[1]) if match else str(jsonio.loads(line)["id"])


def _json(value: Any) -> str:
    return scrub_text(json.dumps(value))


def _text(value: str | None) -> str | None:
    return None if value is None else scrub_text(value)
