"""The scored result as stored in history, and read back: a past run renders again from it byte for byte.

JSON through :func:`auditor.model.to_jsonable`, read back by the dataclasses' own type hints, so a field
added to the model is stored and restored without touching this module.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from auditor.engine import AuditResult
from auditor.model import to_jsonable
from auditor.timeconv import from_iso8601

RESULT_FORMAT = 1


class StoredResultError(Exception):
    """The stored result cannot be read back (another format, or damaged)."""


def encode_result(result: AuditResult) -> str:
    data = to_jsonable(result)
    data.pop("changes", None)  # recorded beside the result, not part of what outputs read
    return json.dumps({"format": RESULT_FORMAT, "result": data}, ensure_ascii=False, separators=(",", ":"))


def decode_result(text: str | bytes) -> AuditResult:
    try:
        document = json.loads(text)
        if document.get("format") != RESULT_FORMAT:
            raise StoredResultError(f"stored in format {document.get('format')!r}, this version reads {RESULT_FORMAT}")
        result = _decode(AuditResult, document["result"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoredResultError(f"the stored result is unreadable: {type(exc).__name__}: {exc}") from None
    assert isinstance(result, AuditResult)
    return result


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    if value is None or kind is Any:
        return value
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value  # float | int: JSON keeps which
    if origin is list:
        return [_decode(args[0], v) for v in value]
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in value)
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in value.items()}
    if not isinstance(kind, type):
        return value
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{f.name: _decode(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)
                       if f.init and f.name in value})
    if issubclass(kind, StrEnum):
        return kind(value)
    if kind is datetime:
        return from_iso8601(value)
    if kind is timedelta:
        return timedelta(seconds=value)
    return value
