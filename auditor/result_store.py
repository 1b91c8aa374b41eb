"""The scored result as stored in history, and read back: a past run renders again from it byte for byte.

JSON through :func:`auditor.model.to_jsonable`, read back by the dataclasses' own type hints, so a field
added to the model is stored and restored without touching this module. The accounts are kept as segments, one
a source in the inventory's order; a source the run also snapshotted names the snapshot instead of repeating
its accounts, and the run's change events are left to the list the history keeps beside the result, stored
as a delta from the previous run's (the history puts both back when it reads the result: ``History.run_result``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from auditor import jsonio
from auditor.engine import AuditResult
from auditor.history import EVENTS_KEY, SNAPSHOT_KEY
from auditor.jsonio import Streamed
from auditor.model import Account
from auditor.scoring import AccountVerdict, AccountVerdicts
from auditor.timeconv import from_iso8601

RESULT_FORMAT = 2  # 2: accounts in segments by source; since_previous. 1 is read too.


class StoredResultError(Exception):
    """The stored result cannot be read back (another format, or damaged)."""


def encode_result(result: AuditResult, snapshots: Mapping[str, list[Account]] | None = None, *,
                  events_apart: bool = False) -> bytes:
    """The stored form, whole (see :func:`result_chunks`)."""
    return b"".join(result_chunks(result, snapshots, events_apart=events_apart))


def result_chunks(result: AuditResult, snapshots: Mapping[str, list[Account]] | None = None, *,
                  events_apart: bool = False) -> Iterator[bytes]:
    """The stored form, in chunks: the findings, verdicts and accounts are written a batch at a time, never
    converted whole. A source whose accounts are ``snapshots[source]`` (the same objects) is left to the
    snapshot the history records with the run; with ``events_apart``, the change events are left to the list
    the history records beside the result (``History.record_run``'s ``result_events``)."""
    streamed: dict[str, Any] = {
        "findings": Streamed(result.findings),
        "verdicts": {"accounts": Streamed(result.verdicts.accounts), "policies": result.verdicts.policies}}
    data = {f.name: streamed.get(f.name, getattr(result, f.name)) for f in dataclasses.fields(AuditResult)
            if f.name not in ("changes", "inventory")}  # changes: recorded beside the result, not read by outputs
    inventory = result.inventory
    stored_inventory = {f.name: getattr(inventory, f.name) for f in dataclasses.fields(inventory)
                        if f.name not in ("accounts", "change_events") and not f.name.startswith("_")}
    stored_inventory["change_events"] = {EVENTS_KEY: True} if events_apart else Streamed(inventory.change_events)
    segments: list[dict[str, Any]] = []
    for source, group in itertools.groupby(inventory.accounts, key=lambda a: a.source):
        accounts = list(group)
        snapshot = (snapshots or {}).get(source)
        if snapshot is not None and len(snapshot) == len(accounts) and all(map(operator.is_, snapshot, accounts)):
            segments.append({"source": source, SNAPSHOT_KEY: True})
        else:
            segments.append({"source": source, "accounts": Streamed(accounts)})
    stored_inventory["accounts"] = segments
    data["inventory"] = stored_inventory
    return jsonio.dumps_streamed({"format": RESULT_FORMAT, "result": data})


def decode_result(text: str | bytes | dict[str, Any]) -> AuditResult:
    """A result as ``History.run_result`` gives it (every segment's accounts and the change events in place),
    or as ``History.run_document`` reads it: a document given as read is taken apart as it is read."""
    try:
        document = text if isinstance(text, dict) else jsonio.loads(text)
        stored_format = document.get("format")
        if stored_format not in (1, RESULT_FORMAT):
            raise StoredResultError(f"stored in format {stored_format!r}, this version reads 1 and {RESULT_FORMAT}")
        data = document["result"]
        if stored_format == 1:
            data["inventory"]["accounts"] = [{"accounts": data["inventory"]["accounts"]}]
            before = {f["key"] for f in (data["previous_run"] or {}).get("findings", [])}
            now = {"|".join((f["rule"], f["source"], f["subject"]["type"], f["subject"]["id"]))
                   for f in data["findings"] if not f["excluded_by"] and not f["accepted_by"]}
            data["since_previous"] = {"new": len(now - before), "resolved": len(before - now)}
        segments = data["inventory"].pop("accounts")
        result = _decode(AuditResult, data)
        read = _decoder(Account)
        result.inventory.accounts = [a for segment in segments for a in _drained(segment["accounts"], read)]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoredResultError(f"the stored result is unreadable: {type(exc).__name__}: {exc}") from None
    assert isinstance(result, AuditResult)
    return result


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    return _decoder(kind)(value)


def _same(value: Any) -> Any:
    return value


@functools.cache
def _decoder(kind: Any) -> Callable[[Any], Any]:
    """How a stored value of type ``kind`` is read back, worked out once a type: asking ``typing`` about the type
    of every value (ten million at 100,000 accounts) was most of the time it took to read a result back."""
    read = _reader(kind)
    return _same if read is _same else lambda value: None if value is None else read(value)


def _reader(kind: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if kind is Any:
        return _same
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _decoder(options[0]) if len(options) == 1 else _same  # float | int: JSON keeps which
    if origin in (list, tuple, dict):
        item = _decoder(args[1] if origin is dict else args[0])
        if origin is dict:
            return lambda value: {k: item(v) for k, v in value.items()}
        return (lambda value: list(_drained(value, item))) if origin is list else \
            (lambda value: tuple(item(v) for v in value))
    if not isinstance(kind, type):
        return _same
    if kind is AccountVerdicts:  # stored as the mapping of keys it reads as
        verdicts = _decoder(dict[str, AccountVerdict])
        return lambda value: AccountVerdicts(verdicts(value))
    if dataclasses.is_dataclass(kind):
        return _dataclass_reader(kind)
    if issubclass(kind, StrEnum):
        return kind
    if kind is datetime:
        return from_iso8601
    if kind is timedelta:
        return lambda value: timedelta(seconds=value)
    return _same


def _dataclass_reader(kind: type) -> Callable[[Any], Any]:
    fields: list[tuple[str, Callable[[Any], Any]]] = []  # made on first use: a field's type may hold this one

    def read(value: Any) -> Any:
        if not fields:
            hints = _hints(kind)
            fields.extend((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(kind) if f.init)
        if isinstance(value, bytes):  # kept as its JSON text until now (History.run_document)
            value = jsonio.loads(value)
        return kind(**{name: decode(value[name]) for name, decode in fields if name in value})

    return read


def _drained(values: Iterable[Any], read: Callable[[Any], Any]) -> Iterator[Any]:
    """Each of ``values`` read, and let go of in their list as it is: the document read back holds the result
    once, as JSON values or as the model, not twice."""
    if not isinstance(values, list):
        yield from map(read, values)
        return
    for index, value in enumerate(values):
        values[index] = None
        yield read(value)
