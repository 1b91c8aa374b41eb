"""reversible-password-encryption: passwords stored so that they can be decrypted."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, SOC2, refs
from auditor.model import Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, policy_finding, source_values

META = RuleMeta(
    id="reversible-password-encryption",
    area="Password policies",
    examines="accounts",
    title="Reversible password encryption",
    description="Accounts flagged ENCRYPTED_TEXT_PWD_ALLOWED, and password policies with reversible "
    "encryption on (domain pwdProperties STORE_CLEARTEXT or a PSO): the next password set is stored in a "
    "form equivalent to clear text.",
    severity=Severity.HIGH,
    remediation="Turn reversible encryption off in the policy and on the account, then have the affected "
    "users change their passwords: existing reversible copies stay until the next change.",
    controls=refs((NIST, "IA-5(1)"), (CIS, "3.11"), (ISO, "A.5.17"), (SOC2, "CC6.1")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = [
        account_finding(META, account, f"{account.username} has reversible password encryption enabled",
                        {"source_values": source_values(account)})
        for account in inventory.accounts
        if account.usable_at(ctx.as_of) and account.reversible_password_encryption is True
    ]
    findings.extend(
        policy_finding(META, policy, f"{policy.name} stores passwords with reversible encryption",
                       {"policy": policy.id, "raw": policy.raw})
        for policy in inventory.policies if policy.reversible_encryption is True
    )
    return findings


RULE = Rule(META, evaluate)
