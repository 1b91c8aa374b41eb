from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.config import AuditSettings, Thresholds
from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, Inventory
from auditor.policy_rating import PolicyRater
from auditor.rules.base import RuleContext

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def context(
    organization: str = "Acme Test Org", per_source: dict[str, int] | None = None, **settings: Any,
) -> RuleContext:
    thresholds = settings.pop("thresholds", {})
    audit = AuditSettings(organization=organization, thresholds=Thresholds(**thresholds), **settings)
    return RuleContext(
        as_of=AS_OF, settings=audit,
        inactive_days=lambda source: (per_source or {}).get(source, audit.inactive_days),
        rater=PolicyRater(organization, audit.thresholds.strong_policy_score, AS_OF.year),
    )


def account(username: str, *, days_idle: int | None = 1, known: bool = True, enabled: bool | None = True,
            created_days: int | None = 400, source: str = "ad", lag_days: int = 0, **fields: Any) -> Account:
    return Account(
        source=source, id=f"id-{username}", username=username, enabled=enabled,
        kind=fields.pop("kind", AccountKind.HUMAN),
        created_at=AS_OF - timedelta(days=created_days) if created_days is not None else None,
        activity_known=known, last_activity_at=AS_OF - timedelta(days=days_idle) if days_idle is not None else None,
        last_activity_attribute="lastLogonTimestamp", activity_lag=timedelta(days=lag_days), **fields,
    )


def events(source: str, per_day: dict[int, int], action: ChangeAction = ChangeAction.MODIFIED) -> list[ChangeEvent]:
    """``per_day`` maps days-before-AS_OF to a count of events on that day."""
    out = []
    for days_back, count in per_day.items():
        for n in range(count):
            out.append(ChangeEvent(source=source, at=AS_OF - timedelta(days=days_back, hours=-1 - n % 20, minutes=-n),
                                   account_id=f"a{n}", action=action))
    return out


def inventory(*accounts: Account, **parts: Any) -> Inventory:
    return Inventory(accounts=list(accounts), **parts)
