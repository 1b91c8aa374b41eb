"""The one place where directory time formats become aware UTC datetimes.

Every connector hands raw values to these functions; everything downstream sees only
``datetime`` objects with ``tzinfo=UTC`` (or ``None`` for "never"/"unknown").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson

__all__ = [
    "FILETIME_NEVER",
    "OPENLDAP_PERMANENT_LOCK",
    "TimeFormatError",
    "check_plausible",
    "ensure_utc",
    "from_ad_duration",
    "from_filetime",
    "from_generalized_time",
    "from_iso8601",
    "from_unix",
    "parse_timestamp",
    "to_iso",
]

# AD writes 0 or the int64 maximum when an account/password "never" expires or a user never logged on.
FILETIME_NEVER = 0x7FFFFFFFFFFFFFFF
_INT64_MIN = -0x8000000000000000
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ppolicy writes this into pwdAccountLockedTime for "locked until an administrator unlocks".
OPENLDAP_PERMANENT_LOCK = "000001010000Z"


class TimeFormatError(ValueError):
    """A value that claims to be a timestamp but is not one."""


# No account event of an audited system happened before 1900 or will after 2999: such values are
# corruption or an undocumented sentinel (year 1601 is FILETIME 1, 9999 a "max date"), not times.
_PLAUSIBLE_FROM = datetime(1900, 1, 1, tzinfo=UTC)
_PLAUSIBLE_UNTIL = datetime(3000, 1, 1, tzinfo=UTC)


def check_plausible(moment: datetime) -> datetime:
    """``moment`` when it lies in 1900-2999; otherwise a TimeFormatError naming it."""
    if not _PLAUSIBLE_FROM <= moment < _PLAUSIBLE_UNTIL:
        raise TimeFormatError(f"{to_iso(moment)} is out of range (not between 1900 and 2999)")
    return moment


def _as_int(value: int | str | bytes, what: str) -> int:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?\d+", value):
            raise TimeFormatError(f"{what}: not an integer: {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TimeFormatError(f"{what}: not an integer: {value!r}")
    return value


def from_filetime(value: int | str | bytes) -> datetime | None:
    """AD FILETIME (100 ns ticks since 1601-01-01 UTC). 0 and 0x7FFFFFFFFFFFFFFF mean never -> None."""
    ticks = _as_int(value, "FILETIME")
    if ticks in (0, FILETIME_NEVER):
        return None
    if ticks < 0:
        raise TimeFormatError(f"FILETIME: negative value {ticks} is not a point in time")
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError as exc:  # beyond year 9999
        raise TimeFormatError(f"FILETIME: {ticks} is out of range") from exc


def to_filetime(moment: datetime) -> int:
    """Inverse of :func:`from_filetime`, used to write fixtures and demo exports."""
    delta = ensure_utc(moment) - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def from_ad_duration(value: int | str | bytes) -> timedelta | None:
    """AD interval attributes (maxPwdAge, lockoutDuration, PSO msDS-*Age): negative 100 ns counts.

    int64-min means "never" -> None. Positive values are accepted as magnitudes because some
    exports (and ldap3's own formatter) drop the sign.
    """
    ticks = _as_int(value, "AD duration")
    if ticks == _INT64_MIN:
        return None
    return timedelta(microseconds=abs(ticks) // 10)


_GENERALIZED = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?P<h>\d{2})"
    r"(?:(?P<mi>\d{2})(?:(?P<s>\d{2}))?)?"
    r"(?:[.,](?P<frac>\d+))?"
    r"(?P<tz>Z|[+-]\d{2}(?:\d{2})?)?"
)


def from_generalized_time(value: str | bytes) -> datetime:
    """LDAP GeneralizedTime (RFC 4517 3.3.13): ``YYYYMMDDHH[MM[SS]][(.|,)frac][Z|+hh[mm]]``.

    A missing zone is read as UTC: AD and OpenLDAP always write ``Z``; other writers that omit it
    are local-time ambiguous and UTC is the only defensible reading without more context.
    The OpenLDAP permanent-lock sentinel (``000001010000Z``) is not a time: callers test for it first.
    """
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if len(text) == 15 and text[14] == "Z" and text[:14].isascii() and text[:14].isdigit():
        # YYYYMMDDHHMMSSZ, how AD and OpenLDAP write every time: the regular expression's result, without it
        try:
            return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                            int(text[12:14]), tzinfo=UTC)
        except ValueError as exc:
            raise TimeFormatError(f"GeneralizedTime: {text!r}: {exc}") from exc
    match = _GENERALIZED.fullmatch(text)
    if not match:
        raise TimeFormatError(f"GeneralizedTime: cannot parse {text!r}")
    if text == OPENLDAP_PERMANENT_LOCK:
        raise TimeFormatError("GeneralizedTime: 000001010000Z is the OpenLDAP permanent-lock sentinel")
    parts = match.groupdict()
    try:
        base = datetime(
            int(parts["y"]), int(parts["mo"]), int(parts["d"]), int(parts["h"]),
            int(parts["mi"] or 0), int(parts["s"] or 0), tzinfo=UTC,
        )
    except ValueError as exc:
        raise TimeFormatError(f"GeneralizedTime: {text!r}: {exc}") from exc
    if parts["frac"]:
        # The fraction applies to the last unit given (RFC 4517): seconds, minutes or hours.
        fraction = float("0." + parts["frac"])
        unit = timedelta(seconds=1) if parts["s"] else timedelta(minutes=1) if parts["mi"] else timedelta(hours=1)
        base += unit * fraction
    zone = parts["tz"]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        base -= sign * offset
    return base


_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?)?"
    r"\s*(?P<tz>Z|z|[+-]\d{2}:?\d{2}|[+-]\d{2})?"
)


# .NET's DateTimeOffset.MinValue: Microsoft Graph writes it for "never" (signInActivity examples in the user
# list reference: lastNonInteractiveSignInDateTime "0001-01-01T00:00:00Z").
DOTNET_MIN = datetime(1, 1, 1, tzinfo=UTC)


def from_iso8601(value: str, *, epoch_is_never: bool = False, dotnet_min_is_never: bool = False) -> datetime | None:
    """ISO 8601 / RFC 3339 as Graph, SCIM, Okta and CSV exports write it.

    Accepts ``Z``, ``+hh:mm``, ``+hhmm``, no zone (read as UTC), any number of fraction digits (Graph
    sometimes writes 7), and a bare date. Empty strings are ``None``. ``epoch_is_never`` maps
    1970-01-01T00:00:00Z to ``None`` for APIs (Google) that use it to mean "never".
    """
    text = value.strip()
    if not text:
        return None
    match = _ISO.fullmatch(text)
    if not match:
        raise TimeFormatError(f"ISO 8601: cannot parse {text!r}")
    parts = match.groupdict()
    time_part = parts["time"] or "00:00:00"
    if len(time_part) == 5:
        time_part += ":00"
    micro = (parts["frac"] or "0")[:6].ljust(6, "0")
    try:
        moment = datetime.fromisoformat(f"{parts['date']}T{time_part}.{micro}")
    except ValueError as exc:
        raise TimeFormatError(f"ISO 8601: {text!r}: {exc}") from exc
    zone = parts["tz"]
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment = moment.replace(tzinfo=UTC) - (offset if zone[0] == "+" else -offset)
    else:
        moment = moment.replace(tzinfo=UTC)
    if (epoch_is_never and moment == _UNIX_EPOCH) or (dotnet_min_is_never and moment == DOTNET_MIN):
        return None
    return moment


def from_unix(value: int | float | str) -> datetime:
    """Unix seconds (Slack ``updated``, Okta ``X-Rate-Limit-Reset``)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise TimeFormatError(f"Unix time: not a number: {value!r}") from exc
    try:
        return _UNIX_EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError) as exc:  # inf, nan, or past year 9999
        raise TimeFormatError(f"Unix time: {value!r} is out of range") from exc


def parse_timestamp(value: str, fmt: str) -> datetime | None:
    """Parse a value in a declared format: iso8601, filetime, generalized, unix, or a strftime pattern."""
    text = value.strip()
    if not text:
        return None
    if fmt == "iso8601":
        return from_iso8601(text)
    if fmt == "filetime":
        return from_filetime(text)
    if fmt == "generalized":
        return from_generalized_time(text)
    if fmt == "unix":
        return from_unix(text)
    try:
        moment = datetime.strptime(text, fmt)
    except ValueError as exc:
        raise TimeFormatError(f"{text!r} does not match the format {fmt!r}") from exc
    return ensure_utc(moment)


def ensure_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_iso(moment: datetime | None) -> str | None:
    """Render as RFC 3339 UTC with a ``Z`` (seconds precision unless there are microseconds)."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:  # the model's times are UTC already: no conversion for them (millions a run)
        moment = ensure_utc(moment)
    # orjson writes a UTC time as exactly this (microseconds only when there are some), five times faster than
    # isoformat and slicing: millions of calls a run. Tested against isoformat for every time.
    return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode("ascii")
