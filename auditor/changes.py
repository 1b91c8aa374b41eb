"""Change events from differences between two snapshots of a source, and merging with logged events."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime

from auditor.model import Account, ChangeAction, ChangeEvent

# Attributes whose change is an account modification worth counting (activity and raw values are not).
_TRACKED = ("username", "email", "display_name", "kind", "privileged", "password_never_expires",
            "password_not_required", "reversible_password_encryption", "expires_at", "password_policy_id")


def diff_snapshots(
    source: str, previous: Iterable[Account], current: Iterable[Account], previous_as_of: datetime, as_of: datetime,
    *, unchanged: Callable[[str], bool] = lambda _: False,
) -> list[ChangeEvent]:
    """Events that explain how ``previous`` became ``current``. ``previous`` may leave out the accounts
    ``unchanged`` names (stored as they are now: nothing to explain).

    A change is dated by the record's own timestamp when it has one inside the window (creation time,
    password-set time); otherwise at ``as_of`` and marked approximate.
    """
    before = {a.id: a for a in previous}
    after = {a.id: a for a in current if not unchanged(a.id)}
    events: list[ChangeEvent] = []

    def event(account: Account, action: ChangeAction, at: datetime | None, detail: str) -> None:
        precise = at is not None and previous_as_of < at <= as_of
        events.append(ChangeEvent(
            source=source, at=at if precise and at else as_of, account_id=account.id, username=account.username,
            action=action, origin="snapshot", detail=detail, approximate_time=not precise,
        ))

    for account_id, account in after.items():
        old = before.get(account_id)
        if old is None:
            event(account, ChangeAction.CREATED, account.created_at, "new since the previous snapshot")
            continue
        # An unknown state on either side is no evidence of a change (a $select that left it out).
        if old.enabled is not None and account.enabled is not None and old.enabled != account.enabled:
            action = ChangeAction.ENABLED if account.enabled else ChangeAction.DISABLED
            event(account, action, None, "enabled flag changed between snapshots")
        if account.password_last_set_at and account.password_last_set_at != old.password_last_set_at:
            event(account, ChangeAction.PASSWORD_RESET, account.password_last_set_at, "password set time changed")
        if sorted(old.groups) != sorted(account.groups):
            added = sorted(set(account.groups) - set(old.groups))
            removed = sorted(set(old.groups) - set(account.groups))
            event(account, ChangeAction.GROUP_CHANGED, None, f"groups added {added}, removed {removed}")
        changed = [name for name in _TRACKED if getattr(old, name) != getattr(account, name)]
        if changed:
            event(account, ChangeAction.MODIFIED, None, "changed: " + ", ".join(changed))
    for account_id, account in before.items():
        if account_id not in after:
            event(account, ChangeAction.DELETED, None, "gone since the previous snapshot")
    return events


def event_key(event: ChangeEvent) -> tuple[str, str, str, str]:
    return (event.source, event.account_id, event.action.value, event.at.isoformat())


def merge_events(logged: list[ChangeEvent], derived: list[ChangeEvent], window_start: datetime) -> list[ChangeEvent]:
    """``logged`` (as :func:`deduplicate` gives them: one of each, in order) with the ``derived`` events they do
    not explain, in that order and without repeats: what ``deduplicate`` of both would give, without a key for
    each of a million logged events again (at a million accounts that second pass was five seconds). Logged
    events win: a snapshot difference the source's own log already explains is dropped."""
    explained = {
        (e.source, e.account_id, e.action.value) for e in logged if e.at > window_start
    }
    fresh = [e for e in derived if (e.source, e.account_id, e.action.value) not in explained]
    if not fresh:
        return list(logged)
    accounts = {e.account_id for e in fresh}
    held = {event_key(e) for e in logged if e.account_id in accounts}
    return list(heapq.merge(logged, [e for e in deduplicate(fresh) if event_key(e) not in held], key=_order))


def deduplicate(events: Iterable[ChangeEvent]) -> list[ChangeEvent]:
    """One event of each key (the first met), in time order. Sorted first, and stably (of events with the same
    key the first met comes first), then each kept unless it has the key of the one before: a dict of every
    event's key, each with its time as text, was some 200 MB at a million accounts' creation events. (Times are
    compared as times, not as their text: the same answer for the model's times, all UTC.)"""
    unique: list[ChangeEvent] = []
    last = None
    for event in sorted(events, key=_order):
        key = _order(event)
        if key != last:
            unique.append(event)
            last = key
    return unique


def _order(event: ChangeEvent) -> tuple[datetime, str, str, str]:
    return event.at, event.source, event.account_id, event.action.value
