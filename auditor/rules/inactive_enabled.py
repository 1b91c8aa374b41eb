"""inactive-enabled: enabled accounts not used for longer than the inactivity threshold."""

from __future__ import annotations

from auditor.activity import ActivityState, ActivityVerdict
from auditor.controls import CIS, ISO, NIST, PCI, SOC2, refs
from auditor.model import Account, Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged
from auditor.timeconv import to_iso

META = RuleMeta(
    id="inactive-enabled",
    area="Dormant accounts",
    examines="accounts",
    title="Inactive accounts still enabled",
    description="Enabled accounts whose last recorded activity is older than inactive_days (per source), "
    "allowing for the source's known reporting lag. Accounts whose activity the source cannot report are "
    "counted as 'activity unknown', not as inactive.",
    severity=Severity.MEDIUM,
    remediation="Confirm with the owner or manager; disable the account, then delete it after the retention "
    "period. For break-glass accounts, add an exclusion with a reason and an expiry date.",
    controls=refs((CIS, "5.3"), (NIST, "AC-2(3)"), (PCI, "8.2.6"), (ISO, "A.5.16"), (SOC2, "CC6.2")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = []
    # One walk of the accounts for both states (a million accounts' walk is seconds); the low-confidence
    # findings first, as before.
    within_lag: list[tuple[Account, ActivityVerdict]] = []
    inactive: list[tuple[Account, ActivityVerdict]] = []
    for account, verdict in ctx.usable_in_state(inventory, ActivityState.INACTIVE_WITHIN_LAG, ActivityState.INACTIVE):
        (within_lag if verdict.state == ActivityState.INACTIVE_WITHIN_LAG else inactive).append((account, verdict))
    for account, verdict in within_lag:
        # Not proven inactive, not known to be active: reported at low severity with the window, so the
        # account is looked at rather than shown as active (Search-ADAccount-style cut-offs miss these).
        low, high = verdict.evidence["days_since_last_use_between"]
        findings.append(account_finding(
            META, account,
            f"{account.username} is enabled and was last used between {low} and {high} days ago: "
            f"{account.last_activity_attribute} lags real use, so it may already be past the threshold",
            {**verdict.evidence, "confidence": "low", "privileged": account.privileged,
             "privilege_evidence": account.privilege_evidence, "kind": account.kind.value},
            Severity.LOW,
        ))
    for account, verdict in inactive:
        evidence = {**verdict.evidence, "confidence": "high", "privileged": account.privileged,
                    "privilege_evidence": account.privilege_evidence, "kind": account.kind.value}
        person = inventory.identity.person_of(account) if inventory.identity else None
        if person is not None:  # stale here, perhaps active elsewhere: both facts are reported
            evidence["person"] = person.id
            evidence["person_active_elsewhere"] = [
                f"{link.account.source}:{link.account.username} last active {to_iso(link.account.last_activity_at)}"
                for link in person.links
                if link.account is not account and ctx.activity(link.account).state == ActivityState.ACTIVE
            ]
        findings.append(account_finding(
            META, account,
            f"{account.username} is enabled but last active {verdict.days_since} days ago "
            f"({account.last_activity_attribute})",
            evidence, raised_if_privileged(account, META.severity),
        ))
    return findings


RULE = Rule(META, evaluate)
