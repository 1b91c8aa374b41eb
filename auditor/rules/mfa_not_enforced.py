"""mfa-not-enforced: people's accounts for which the source does not require a second factor."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, PCI, SOC2, refs
from auditor.model import Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged, source_values

META = RuleMeta(
    id="mfa-not-enforced",
    area="Multi-factor authentication",
    examines="accounts",
    title="MFA not enforced",
    description="Enabled accounts of people for which the source says a second factor is not required "
    "(Google isEnforcedIn2Sv, a GitHub organisation without the two-factor requirement). A user who "
    "registered MFA voluntarily can still turn it off. Sources that do not report enforcement are not judged.",
    severity=Severity.LOW,
    remediation="Enforce MFA for the whole tenant or organisation (Google: 2-Step Verification enforcement "
    "per organisational unit; GitHub: require two-factor authentication); start with administrators.",
    controls=refs((CIS, "6.3"), (CIS, "6.5"), (NIST, "IA-2(1)"), (PCI, "8.4.2"), (ISO, "A.8.5"), (SOC2, "CC6.1")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = []
    for account in inventory.accounts:
        if not account.usable_at(ctx.as_of) or account.automated or account.mfa_enforced is not False:
            continue
        registered = {True: "registered anyway", False: "and none registered", None: "registration unknown"}
        severity = Severity.MEDIUM if account.mfa_registered is False else META.severity
        findings.append(account_finding(
            META, account, f"{account.username} in {account.source}: MFA not enforced, "
            f"{registered[account.mfa_registered]}",
            {"mfa_enforced": False, "mfa_registered": account.mfa_registered,
             "source_values": source_values(account),
             "privileged": account.privileged, "kind": account.kind.value},
            raised_if_privileged(account, severity),
        ))
    return findings


RULE = Rule(META, evaluate)
