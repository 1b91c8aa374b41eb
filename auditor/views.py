"""Per-account rows shared by the CSV export and the HTML report (no source-specific knowledge)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from auditor.engine import AuditResult
from auditor.model import Account
from auditor.timeconv import to_iso


def policy_strength(result: AuditResult, account: Account) -> tuple[str, str | None]:
    """('strong' | 'weak' | 'unknown', policy name)."""
    policy = result.inventory.policy_for(account)
    if policy is None:
        return "unknown", None
    rating = result.context.rater.rate(policy)
    label = "unknown" if rating.strong is None else ("strong" if rating.strong else "weak")
    return label, policy.name


def account_rows(result: AuditResult) -> list[dict[str, Any]]:
    rules_by_account: dict[tuple[str, str], list[str]] = defaultdict(list)
    for finding in result.open_findings():
        if finding.subject.type == "account":
            rules_by_account[(finding.source, finding.subject.id)].append(finding.rule)
    ctx = result.context
    rows = []
    for account in result.inventory.accounts:
        verdict = ctx.activity(account)
        strength, policy_name = policy_strength(result, account)
        rows.append({
            "source": account.source, "id": account.id, "username": account.username,
            "display_name": account.display_name or "", "email": account.email or "",
            "kind": account.kind.value, "enabled": account.usable_at(ctx.as_of),
            "privileged": account.privileged, "activity": verdict.state.value,
            "last_activity_at": to_iso(account.last_activity_at) or "",
            "last_activity_attribute": account.last_activity_attribute or "",
            "days_since_activity": verdict.days_since,
            "created_at": to_iso(account.created_at) or "",
            "password_last_set_at": to_iso(account.password_last_set_at) or "",
            "password_never_expires": account.password_never_expires,
            "mfa_registered": account.mfa_registered,
            "password_policy": policy_name or "", "policy_strength": strength,
            "groups": ";".join(account.groups),
            "findings": ";".join(sorted(rules_by_account.get((account.source, account.id), []))),
        })
    return rows
