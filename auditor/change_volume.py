"""Counting account changes per day and finding days that stand out from the trailing baseline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from auditor.model import ChangeEvent

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


def in_period(events: Iterable[ChangeEvent], start: datetime, end: datetime) -> list[ChangeEvent]:
    return [e for e in events if start < e.at <= end]


def per_day(events: Iterable[ChangeEvent]) -> Counter[date]:
    return Counter(e.at.date() for e in events)


def per_action(events: Iterable[ChangeEvent]) -> Counter[str]:
    return Counter(e.action.value for e in events)


@dataclass(frozen=True)
class Spike:
    day: date
    count: int
    baseline_median: float
    baseline_mad: float
    threshold: float
    baseline_days: int


def find_spikes(
    events: list[ChangeEvent], start: datetime, end: datetime, *, baseline_days: int, k: float, min_changes: int,
) -> tuple[list[Spike], str | None]:
    """Days in (start, end] whose count exceeds median + k * MAD of the ``baseline_days`` before them.

    Only days from the first observed event on count as baseline (days before the data begins are not
    zero-change days). Returns the spikes and, when no day could be judged, why.
    """
    dated = [e for e in events if not e.approximate_time]
    if not dated:
        return [], "no dated change events"
    counts = per_day(dated)
    first = min(counts)
    spikes: list[Spike] = []
    judged = 0
    day = start.date() + timedelta(days=1)
    while day <= end.date():
        window = [day - timedelta(days=n) for n in range(1, baseline_days + 1)]
        window = [d for d in window if d >= first]
        if len(window) >= 7:  # fewer days say nothing about what is normal
            judged += 1
            values = [counts.get(d, 0) for d in window]
            mid = median(values)
            # MAD scaled to estimate a standard deviation, floored at 1 so that a flat baseline does not
            # turn every small wobble into a spike.
            mad = max(1.0, _MAD_TO_SIGMA * median(abs(v - mid) for v in values))
            threshold = mid + k * mad
            count = counts.get(day, 0)
            if count > threshold and count >= min_changes:
                spikes.append(Spike(day, count, mid, mad, threshold, len(window)))
        day += timedelta(days=1)
    if not judged:
        return [], "less than 7 days of change history before the period"
    return spikes, None
