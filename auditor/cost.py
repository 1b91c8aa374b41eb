"""What unused accounts cost: each account's monthly price from its source's ``[sources.cost]``, and the
spend on accounts nobody uses (inactive, never used, held by people who left, or owned by nobody).

Waste is read from the audit's own open findings, so an excluded or accepted account is not counted. An
account whose activity no source can tell is not waste (unless its owner left: then it is, used or not); its
spend is reported beside, as unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.activity import ActivityState
from auditor.kpis import Kpi
from auditor.model import Account, Finding
from auditor.scoring import Verdicts, verdict_key
from connectors.base import CostSettings, SourceConfig

# The rule that makes an account waste, and the reason it is counted under; the first that applies wins.
WASTE_REASONS = {"offboarding-gap": "left", "unmanaged-account": "unmanaged", "never-used-enabled": "never_used",
                 "inactive-enabled": "inactive"}
_PRIORITY = {reason: rank for rank, reason in enumerate(WASTE_REASONS.values())}


@dataclass(frozen=True)
class Price:
    monthly: float
    currency: str
    basis: str  # how it was priced: "per account", "kind guest", "licences SPE_E3, ..."


def price_of(account: Account, cost: CostSettings) -> Price | None:
    if cost.per_sku and account.licences is not None:
        held = [sku for sku in account.licences if sku in cost.per_sku]
        basis = f"licences {', '.join(held)}" if held else "no priced licence"
        return Price(round(sum(cost.per_sku[sku] for sku in held), 2), cost.currency, basis)
    if account.kind.value in cost.per_kind:
        return Price(cost.per_kind[account.kind.value], cost.currency, f"kind {account.kind.value}")
    if cost.per_account_month is not None:
        return Price(cost.per_account_month, cost.currency, "per account")
    return None  # licences unknown and no other rule: the price is unknown, not zero


def account_prices(sources: Iterable[SourceConfig], accounts: Iterable[Account]) -> dict[str, Price]:
    """By verdict key, for the accounts of sources that have a price; empty when no source has one."""
    costs = {s.name: s.cost for s in sources if s.cost is not None}
    if not costs:
        return {}
    return {verdict_key(a.source, a.id): price for a in accounts
            if (cost := costs.get(a.source)) is not None and (price := price_of(a, cost)) is not None}


def _money(amount: float) -> float:
    return round(amount, 2)


def spend_kpi(accounts: Iterable[Account], findings: Iterable[Finding], verdicts: Verdicts,
              prices: Mapping[str, Price]) -> Kpi:
    """Monthly spend on unused accounts: the value in the one currency the prices use (None when they mix
    currencies: the detail then gives each), yearly, per source and per reason, and the spend on enabled
    accounts whose activity is unknown, apart."""
    reasons: dict[str, str] = {}
    for finding in findings:
        reason = WASTE_REASONS.get(finding.rule)
        if reason is None or finding.status != "open" or finding.subject.type != "account":
            continue
        key = verdict_key(finding.source, finding.subject.id)
        if key not in reasons or _PRIORITY[reason] < _PRIORITY[reasons[key]]:
            reasons[key] = reason
    by_currency: dict[str, dict[str, Any]] = {  # every currency priced, so one with nothing unused says 0
        currency: {"monthly": 0.0, "accounts": 0, "by_reason": defaultdict(float), "per_source": defaultdict(float),
                   "unknown_activity_monthly": 0.0, "unknown_activity_accounts": 0}
        for currency in sorted({p.currency for p in prices.values()})}
    unpriced = 0
    for account in accounts:
        key = verdict_key(account.source, account.id)
        price = prices.get(key)
        reason = reasons.get(key)
        if price is None:
            unpriced += reason is not None
            continue
        verdict = verdicts.accounts.of(account.source, account.id)
        unknown = verdict is not None and verdict.usable and verdict.activity == ActivityState.UNKNOWN
        if unknown and reason != "left":  # may be in use: not waste (a leaver's account is, used or not)
            reason = None
        spent = by_currency[price.currency]
        if reason is not None:
            spent["monthly"] += price.monthly
            spent["accounts"] += 1
            spent["by_reason"][reason] += price.monthly
            spent["per_source"][account.source] += price.monthly
        elif unknown:
            spent["unknown_activity_monthly"] += price.monthly
            spent["unknown_activity_accounts"] += 1
    currencies = {
        currency: {
            "monthly": _money(spent["monthly"]), "yearly": _money(spent["monthly"] * 12), "accounts": spent["accounts"],
            "by_reason": {r: _money(v) for r, v in sorted(spent["by_reason"].items())},
            "per_source": {s: _money(v) for s, v in sorted(spent["per_source"].items())},
            "unknown_activity_monthly": _money(spent["unknown_activity_monthly"]),
            "unknown_activity_accounts": spent["unknown_activity_accounts"],
        } for currency, spent in sorted(by_currency.items())}
    single = next(iter(currencies)) if len(currencies) == 1 else None
    detail: dict[str, Any] = ({"currency": single, **currencies[single]} if single
                              else {"currencies": currencies})
    detail["unused_accounts_without_price"] = unpriced
    return Kpi("unused_account_spend", "Monthly spend on accounts nobody uses",
               currencies[single]["monthly"] if single else None, "money", detail)
