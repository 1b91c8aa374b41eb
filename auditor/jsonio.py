"""JSON encoding of outputs and stored data: the bytes ``json.dumps`` would write, at orjson's speed.

``json.dumps`` with ``indent`` runs its pure-Python encoder (CPython 3.11 has no C path for it): at a million
accounts the JSON outputs alone took minutes. orjson writes the same text for every value our model converts
to (``to_jsonable``): the same string escapes, key order, separators and two-space indent. The one difference:
floats below 1e-4 in magnitude come out as ``0.00001`` where ``json.dumps`` writes ``1e-05``, the same
number. Integers beyond 64 bits, which orjson refuses, go through ``json`` as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from auditor.model import to_jsonable


def dumps(value: Any, *, indent: bool = False, sort_keys: bool = False) -> bytes:
    """``json.dumps(to_jsonable(value), ensure_ascii=False, ...)`` as UTF-8: indented by two spaces, or with
    no spaces at all (``separators=(",", ":")``)."""
    plain = to_jsonable(value)
    option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(plain, option=option)
    except orjson.JSONEncodeError:
        text = json.dumps(plain, ensure_ascii=False, sort_keys=sort_keys,
                          **({"indent": 2} if indent else {"separators": (",", ":")}))
        return text.encode("utf-8")


def loads(data: str | bytes) -> Any:
    """Parse JSON (``ValueError`` when it is not)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
