"""Per-account rows shared by the CSV export and the HTML report (no source-specific knowledge)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from auditor.engine import AuditResult
from auditor.rules import marked
from auditor.scoring import AccountVerdict, verdict_key
from auditor.timeconv import to_iso


def _enabled(verdict: AccountVerdict) -> bool | None:
    """Usable now (True), not (False), or not said by the source (None: shown as "unknown")."""
    return None if verdict.state == "unknown" else verdict.usable


def account_rows(result: AuditResult) -> Iterator[dict[str, Any]]:
    """One row per account, in the inventory's order, made as they are read (the CSV export streams them)."""
    # By source, then account id: a rule's name alone (most accounts have one open finding), a list for more.
    # Keys and names are the findings' own strings: a (source, id) tuple and a list an account were 150 MB at
    # a million.
    rules_by_account: dict[str, dict[str, str | list[str]]] = defaultdict(dict)
    for finding in result.findings:
        if finding.subject.type == "account" and finding.status == "open":
            mine = rules_by_account[finding.source]
            known = mine.get(finding.subject.id)
            if known is None:
                mine[finding.subject.id] = finding.rule
            elif isinstance(known, list):
                known.append(finding.rule)
            else:
                mine[finding.subject.id] = [known, finding.rule]
    no_rules: dict[str, str | list[str]] = {}
    for account in result.inventory.accounts:
        verdict = result.verdicts.of(account)
        rules = rules_by_account.get(account.source, no_rules).get(account.id, "")
        row: dict[str, Any] = {
            "source": account.source, "id": account.id, "username": account.username,
            "display_name": account.display_name or "", "email": account.email or "",
            "kind": account.kind.value, "enabled": _enabled(verdict),
            "privileged": account.privileged, "activity": verdict.activity.value,
            "last_activity_at": to_iso(account.last_activity_at) or "",
            "last_activity_attribute": account.last_activity_attribute or "",
            "days_since_activity": "" if verdict.days_since_activity is None else verdict.days_since_activity,
            "created_at": to_iso(account.created_at) or "",
            "password_last_set_at": to_iso(account.password_last_set_at) or "",
            "password_never_expires": account.password_never_expires,
            "mfa_registered": account.mfa_registered,
            "password_policy": verdict.policy_name or "", "policy_strength": verdict.policy_strength,
            "groups": ";".join(account.groups),
            "findings": rules if isinstance(rules, str) else ";".join(sorted(rules)),
        }
        if result.prices:  # empty cells: no price for this source, or this account's price is unknown
            price = result.prices.get(verdict_key(account.source, account.id))
            row["monthly_cost"] = "" if price is None else f"{price.monthly:.2f}"
            row["currency"] = "" if price is None else price.currency
        yield row


def person_rows(result: AuditResult) -> list[dict[str, Any]]:
    """One row per person of the identity graph: their accounts everywhere, combined activity, open gaps.
    People with open findings come first (offboarding gaps before anything else)."""
    graph = result.inventory.identity
    if graph is None:
        return []
    rules: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for finding in result.open_findings():
        rules[(finding.subject.type, finding.source, finding.subject.id)].add(finding.rule)
    rows: list[dict[str, Any]] = []
    for person in graph.people:
        accounts, person_rules = [], set(rules.get(("person", graph.authoritative_source, person.id), set()))
        for link in person.links:
            account = link.account
            verdict = result.verdicts.of(account)
            mine = rules.get(("account", account.source, account.id), set())
            person_rules |= mine
            accounts.append({
                "source": account.source, "username": account.username, "enabled": _enabled(verdict),
                "activity": verdict.activity.value, "last_activity_at": to_iso(account.last_activity_at) or "",
                "linked_by": link.key, "findings": sorted(mine),
            })
        known = [link.account.last_activity_at for link in person.links
                 if link.account.activity_known and link.account.last_activity_at]
        departure = person.departure
        rows.append({
            "person": person.id, "name": person.name,
            "directory_account": f"{person.authoritative.source}:{person.authoritative.username}",
            "directory_state": departure.how if departure else result.verdicts.of(person.authoritative).state,
            "departed_at": to_iso(departure.at) if departure and departure.at else "",
            "departed_not_before": to_iso(departure.not_before) if departure and departure.not_before else "",
            "last_activity_anywhere": to_iso(max(known)) if known else "",
            "enabled_accounts": sum(1 for a in accounts if a["enabled"] is True),
            "accounts": accounts, "findings": sorted(person_rules),
        })
    departures = marked("departure_gap")
    rows.sort(key=lambda r: (not departures & set(r["findings"]), not r["findings"], r["name"].lower()))
    return rows
