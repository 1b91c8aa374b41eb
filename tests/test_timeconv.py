from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.timeconv import (
    FILETIME_NEVER,
    TimeFormatError,
    from_ad_duration,
    from_filetime,
    from_generalized_time,
    from_iso8601,
    from_unix,
    parse_timestamp,
    to_filetime,
    to_iso,
)


class TestFiletime:
    def test_known_value(self) -> None:
        # 2023-11-07 14:35:12 UTC, computed as (unix + 11644473600) * 10^7
        assert from_filetime(133438413120000000) == datetime(2023, 11, 7, 14, 35, 12, tzinfo=UTC)

    @pytest.mark.parametrize("never", [0, FILETIME_NEVER, "0", "9223372036854775807", b"9223372036854775807"])
    def test_never_sentinels_are_none(self, never: int | str | bytes) -> None:
        assert from_filetime(never) is None

    def test_sub_second_precision_and_roundtrip(self) -> None:
        moment = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
        assert from_filetime(to_filetime(moment)) == moment

    def test_epoch(self) -> None:
        assert from_filetime(1) == datetime(1601, 1, 1, tzinfo=UTC)

    @pytest.mark.parametrize("bad", [-5, "abc", "", "1.5", True])
    def test_rejects_non_times(self, bad: object) -> None:
        with pytest.raises(TimeFormatError):
            from_filetime(bad)  # type: ignore[arg-type]

    def test_out_of_range(self) -> None:
        with pytest.raises(TimeFormatError):
            from_filetime(FILETIME_NEVER - 1)


class TestAdDuration:
    def test_negative_intervals(self) -> None:
        assert from_ad_duration(-36288000000000) == timedelta(days=42)
        assert from_ad_duration("-18000000000") == timedelta(minutes=30)

    def test_int64_min_is_never(self) -> None:
        assert from_ad_duration(-9223372036854775808) is None

    def test_unsigned_magnitude_accepted(self) -> None:
        assert from_ad_duration(36288000000000) == timedelta(days=42)


class TestGeneralizedTime:
    @pytest.mark.parametrize(("text", "expected"), [
        ("20231107143512.0Z", datetime(2023, 11, 7, 14, 35, 12, tzinfo=UTC)),
        ("20231107143512Z", datetime(2023, 11, 7, 14, 35, 12, tzinfo=UTC)),
        ("20231107143512.123456Z", datetime(2023, 11, 7, 14, 35, 12, 123456, tzinfo=UTC)),
        ("20231107143512,5Z", datetime(2023, 11, 7, 14, 35, 12, 500000, tzinfo=UTC)),
        ("20231107143512+0200", datetime(2023, 11, 7, 12, 35, 12, tzinfo=UTC)),
        ("20231107143512.5-0530", datetime(2023, 11, 7, 20, 5, 12, 500000, tzinfo=UTC)),
        ("202311071435Z", datetime(2023, 11, 7, 14, 35, tzinfo=UTC)),
        ("2023110714Z", datetime(2023, 11, 7, 14, tzinfo=UTC)),
        ("2023110714.5Z", datetime(2023, 11, 7, 14, 30, tzinfo=UTC)),  # fraction of an hour
        ("20231107143512-05", datetime(2023, 11, 7, 19, 35, 12, tzinfo=UTC)),
        ("20231107143512", datetime(2023, 11, 7, 14, 35, 12, tzinfo=UTC)),  # no zone: read as UTC
    ])
    def test_forms(self, text: str, expected: datetime) -> None:
        result = from_generalized_time(text)
        assert result == expected
        assert result.tzinfo is UTC

    def test_openldap_permanent_lock_is_not_a_time(self) -> None:
        with pytest.raises(TimeFormatError, match="permanent-lock"):
            from_generalized_time("000001010000Z")

    @pytest.mark.parametrize("bad", ["2023-11-07", "20231341000000Z", "yesterday", ""])
    def test_rejects(self, bad: str) -> None:
        with pytest.raises(TimeFormatError):
            from_generalized_time(bad)


class TestIso8601:
    @pytest.mark.parametrize(("text", "expected"), [
        ("2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T10:00:00.1234567Z", datetime(2024, 1, 31, 10, 0, 0, 123456, tzinfo=UTC)),  # Graph, 7 digits
        ("2024-01-31T10:00:00+02:00", datetime(2024, 1, 31, 8, tzinfo=UTC)),
        ("2024-01-31T10:00:00-0130", datetime(2024, 1, 31, 11, 30, tzinfo=UTC)),
        ("2024-01-31T10:00:00", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31 10:00", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
    ])
    def test_forms(self, text: str, expected: datetime) -> None:
        assert from_iso8601(text) == expected

    def test_empty_is_none(self) -> None:
        assert from_iso8601("  ") is None

    def test_google_epoch_sentinel(self) -> None:
        assert from_iso8601("1970-01-01T00:00:00.000Z", epoch_is_never=True) is None
        assert from_iso8601("1970-01-01T00:00:00.000Z") == datetime(1970, 1, 1, tzinfo=UTC)

    @pytest.mark.parametrize("bad", ["31/01/2024", "2024-13-01T00:00:00Z", "2024-01-31T25:00:00Z"])
    def test_rejects(self, bad: str) -> None:
        with pytest.raises(TimeFormatError):
            from_iso8601(bad)


def test_declared_formats() -> None:
    assert parse_timestamp("1700000000", "unix") == from_unix(1700000000)
    assert parse_timestamp("31.01.2024 10:00", "%d.%m.%Y %H:%M") == datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert parse_timestamp("133438413120000000", "filetime") == datetime(2023, 11, 7, 14, 35, 12, tzinfo=UTC)
    assert parse_timestamp("20231107143512.0Z", "generalized") == datetime(2023, 11, 7, 14, 35, 12, tzinfo=UTC)
    assert parse_timestamp("", "iso8601") is None
    with pytest.raises(TimeFormatError):
        parse_timestamp("2024/01/31", "%d.%m.%Y")


def test_to_iso() -> None:
    assert to_iso(datetime(2024, 1, 31, 10, tzinfo=UTC)) == "2024-01-31T10:00:00Z"
    assert to_iso(datetime(2024, 1, 31, 10, 0, 0, 5, tzinfo=UTC)) == "2024-01-31T10:00:00.000005Z"
    assert to_iso(None) is None


@settings(max_examples=500)
@given(st.datetimes(timezones=st.none() | st.just(UTC) | st.builds(  # fixed offsets: no tz database needed
    timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)))))
def test_to_iso_writes_what_isoformat_writes_in_utc(moment: datetime) -> None:
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # beyond year 1..9999 once in UTC: no such time to write
        with pytest.raises(OverflowError):
            to_iso(moment)
        return
    assert to_iso(moment) == utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")[:-6] + "Z"


def test_unix_times_out_of_range_are_time_format_errors() -> None:
    from auditor.timeconv import from_unix

    for value in ("INF", "nan", 1e300, -1e300):
        with pytest.raises(TimeFormatError, match="out of range"):
            from_unix(value)


def test_graph_dotnet_min_date_is_never_and_the_plausible_window() -> None:
    from auditor.timeconv import check_plausible

    assert from_iso8601("0001-01-01T00:00:00Z", dotnet_min_is_never=True) is None
    with pytest.raises(TimeFormatError, match="out of range"):
        check_plausible(from_iso8601("0001-01-01T00:00:00Z"))  # type: ignore[arg-type]
    with pytest.raises(TimeFormatError, match="out of range"):
        check_plausible(from_iso8601("9999-12-31T00:00:00Z"))  # type: ignore[arg-type]
