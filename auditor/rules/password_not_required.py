"""password-not-required: enabled accounts allowed to have an empty password (AD PASSWD_NOTREQD)."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, SOC2, refs
from auditor.model import AccountKind, Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged, source_values

META = RuleMeta(
    id="password-not-required",
    area="Password policies",
    examines="accounts",
    title="Password not required",
    description="Enabled accounts flagged PASSWD_NOTREQD: the domain's length and complexity rules are not "
    "enforced for them and the password may be empty.",
    severity=Severity.HIGH,
    remediation="Clear the flag (Set-ADUser -PasswordNotRequired $false) and set a compliant password.",
    controls=refs((CIS, "5.2"), (NIST, "IA-5(1)"), (ISO, "A.5.17"), (SOC2, "CC6.1")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    return [
        account_finding(
            META, account, f"{account.username} may have an empty password (PASSWD_NOTREQD)",
            {"source_values": source_values(account)},
            raised_if_privileged(account, META.severity),
        )
        for account in inventory.accounts
        # Trust accounts carry the bit by design (default 0x820).
        if account.usable_at(ctx.as_of) and account.password_not_required is True
        and account.kind != AccountKind.MACHINE
    ]


RULE = Rule(META, evaluate)
