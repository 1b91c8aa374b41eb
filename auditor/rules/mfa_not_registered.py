"""mfa-not-registered: enabled people who have registered no MFA method."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, PCI, SOC2, refs
from auditor.model import AccountKind, Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding

META = RuleMeta(
    id="mfa-not-registered",
    area="Multi-factor authentication",
    examines="accounts",
    title="No MFA method registered",
    description="Enabled human and guest accounts that, according to their source, have registered no "
    "multi-factor method (Entra userRegistrationDetails, or an export's MFA column). Accounts whose MFA "
    "state the source cannot tell are not reported. Privileged accounts are high severity.",
    severity=Severity.MEDIUM,
    remediation="Require MFA registration (registration campaign or Conditional Access); for administrators, "
    "enforce phishing-resistant methods before anything else.",
    controls=refs((CIS, "6.3"), (CIS, "6.5"), (NIST, "IA-2(1)"), (PCI, "8.4.2"), (ISO, "A.8.5"), (SOC2, "CC6.1")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    return [
        account_finding(
            META, account, f"{account.username} has no MFA method registered",
            {"mfa_registered": False, "privileged": account.privileged,
             "privilege_evidence": account.privilege_evidence, "kind": account.kind.value},
            Severity.HIGH if account.privileged else META.severity,
        )
        for account in inventory.accounts
        if account.usable_at(ctx.as_of) and account.mfa_registered is False
        and account.kind in (AccountKind.HUMAN, AccountKind.GUEST, AccountKind.UNKNOWN)
    ]


RULE = Rule(META, evaluate)
