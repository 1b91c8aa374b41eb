"""The headline numbers every report opens with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auditor.activity import ActivityState
from auditor.change_volume import in_period, per_action
from auditor.model import AccountKind, Finding, Inventory, SourceState
from auditor.review_outcomes import completion, revocations
from auditor.rules import marked
from auditor.scoring import Verdicts

# Every KPI id compute_kpis can report (offboarding_gaps only with an identity graph): config keys name them.
KPI_IDS = ("inactive_enabled_accounts", "inactive_deactivated_share", "activity_unknown_accounts",
           "enabled_unknown_accounts", "strong_policy_share", "account_changes", "offboarding_gaps",
           "unused_account_spend",  # only when a source has a [sources.cost] (auditor.cost)
           "review_completion", "revocations_carried_out")  # only once the history has an access review


@dataclass(frozen=True)
class Kpi:
    id: str
    label: str
    value: float | int | None  # None: cannot be computed from what the sources returned
    unit: str  # "count" | "ratio"
    detail: dict[str, Any]


def compute_kpis(
    inventory: Inventory, findings: list[Finding], verdicts: Verdicts, as_of: datetime, period_days: int,
) -> list[Kpi]:
    """Measured from the verdicts the audit reached: nothing is judged again here."""
    # Excluded and accepted findings are not counted as open problems.
    excluded = {(f.source, f.subject.id) for f in findings if f.status != "open" and f.subject.type == "account"}
    # A source read only in part would make every share a guess: its accounts stay out of the figures
    # (their findings are still reported), and each figure says how many were left out.
    partial = {s.name for s in inventory.sources if s.state == SourceState.PARTIAL}
    counted = [a for a in inventory.accounts if a.source not in partial]
    left_out = {"not_counted_partial_sources": len(inventory.accounts) - len(counted)} if partial else {}
    states: dict[ActivityState, int] = dict.fromkeys(ActivityState, 0)
    stale_enabled = stale_disabled = enabled_unknown = 0
    for account in counted:
        if account.enabled is None:  # neither enabled nor disabled: counted apart, never as either
            enabled_unknown += 1
            continue
        verdict = verdicts.of(account)
        usable = verdict.usable
        if usable:
            states[verdict.activity] += 1
        if verdict.activity in (ActivityState.INACTIVE, ActivityState.NEVER_USED):
            if usable:
                stale_enabled += (account.source, account.id) not in excluded
            else:
                stale_disabled += 1
    stale_total = stale_enabled + stale_disabled

    strong = weak = unknown = 0
    for account in counted:
        verdict = verdicts.of(account)
        if not verdict.usable or account.kind == AccountKind.MACHINE:
            continue
        if verdict.policy_strength == "strong":
            strong += 1
        elif verdict.policy_strength == "weak":
            weak += 1
        else:
            unknown += 1
    rated = strong + weak  # unknown strength is neither: counted in the detail, not in the share

    events = in_period(inventory.change_events, as_of - timedelta(days=period_days), as_of)
    actions = per_action(events)
    kpis = [
        Kpi("inactive_enabled_accounts", "Inactive or never-used accounts still enabled", stale_enabled, "count",
            {"inactive": states[ActivityState.INACTIVE], "never_used": states[ActivityState.NEVER_USED],
             # last use on either side of the threshold (lastLogonTimestamp lag): reported, not counted here
             "inactive_within_lag": states[ActivityState.INACTIVE_WITHIN_LAG],
             "excluded": len(excluded), **left_out}),
        Kpi("inactive_deactivated_share", "Share of inactive accounts that are deactivated",
            round(stale_disabled / stale_total, 4) if stale_total else None, "ratio",
            {"inactive_disabled": stale_disabled, "inactive_enabled": stale_enabled, **left_out}),
        Kpi("activity_unknown_accounts", "Enabled accounts whose activity no source can tell",
            states[ActivityState.UNKNOWN], "count", dict(left_out)),
        Kpi("enabled_unknown_accounts", "Accounts whose source does not say whether they are enabled",
            enabled_unknown, "count", dict(left_out)),
        Kpi("strong_policy_share", "Share of enabled accounts governed by a strong password policy "
            "(of those whose policy strength is known)",
            round(strong / rated, 4) if rated else None, "ratio",
            {"strong": strong, "weak": weak, "unknown": unknown, **left_out}),
        Kpi("account_changes", f"Account changes in the last {period_days} days", len(events), "count",
            {"per_action": dict(actions)}),
    ]
    if inventory.identity is not None:
        kpis.append(_offboarding_kpi(findings))
    if inventory.reviews:
        kpis += _review_kpis(inventory, as_of)
    return kpis


def _review_kpis(inventory: Inventory, as_of: datetime) -> list[Kpi]:
    """The latest campaign's completion, and every revocation decided so far: carried out or not."""
    done = completion(inventory.reviews[-1])
    outcomes = [outcome for _decided, _account, outcome in revocations(inventory, as_of)]
    carried = sum(1 for o in outcomes if o.startswith("carried out"))
    return [
        # Counts only: who reviewed (identifiers) is in the report's access-review table and the evidence.
        Kpi("review_completion", "Accounts decided in the latest access review", done["share"], "ratio",
            {"campaign": done["campaign"], "accounts": done["accounts"], "decided": done["decided"],
             "unassigned": done["unassigned"], "reviewers": len(done["per_reviewer"]),
             "reviewers_done": sum(1 for d, n in done["per_reviewer"].values() if d == n)}),
        Kpi("revocations_carried_out", "Access-review revocations carried out", carried, "count",
            {"revocations_decided": len(outcomes), "not_carried_out": len(outcomes) - carried}),
    ]


def _offboarding_kpi(findings: list[Finding]) -> Kpi:
    """People who left with accounts still enabled elsewhere, and how long those accounts have outlived them."""
    departures = marked("departure_gap")
    gaps = [f for f in findings if f.rule in departures and f.status == "open"]
    days = sorted(d for f in gaps if (d := f.evidence.get("days_since_departure")) is not None)
    return Kpi("offboarding_gaps", "People who left with accounts still enabled elsewhere",
               len({f.evidence["person"] for f in gaps}), "count",
               {"accounts": len(gaps),
                "used_after_departure": sum(1 for f in gaps if f.evidence["used_after_departure"]),
                "median_days_since_departure": days[len(days) // 2] if days else None,
                "longest_days_since_departure": days[-1] if days else None})
