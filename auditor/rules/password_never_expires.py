"""password-never-expires: enabled accounts exempt from password expiry."""

from __future__ import annotations

from auditor.controls import CIS, PCI, SOC2, refs
from auditor.model import AccountKind, Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged, source_values
from auditor.timeconv import to_iso

META = RuleMeta(
    id="password-never-expires",
    area="Password policies",
    examines="accounts",
    title="Password never expires",
    description="Enabled user and service accounts exempt from the password maximum age (AD "
    "DONT_EXPIRE_PASSWORD, Entra DisablePasswordExpiration). Under NIST SP 800-63B periodic rotation is not "
    "required when passwords are screened and MFA is used; PCI DSS 8.3.9 requires 90-day changes where a "
    "password is the only factor. The finding shows how old each such password is.",
    severity=Severity.LOW,
    remediation="For service accounts, move to managed service accounts (gMSA) or rotate secrets from a vault; "
    "for people, remove the exemption or ensure MFA and a banned-password check.",
    controls=refs((CIS, "5.2"), (CIS, "5.5"), (PCI, "8.3.9"), (SOC2, "CC6.1")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = []
    for account in inventory.accounts:
        if not account.usable_at(ctx.as_of) or account.password_never_expires is not True:
            continue
        if account.kind == AccountKind.MACHINE:
            continue  # machine passwords rotate by themselves
        age = (ctx.as_of - account.password_last_set_at).days if account.password_last_set_at else None
        evidence = {
            "password_last_set_at": to_iso(account.password_last_set_at), "password_age_days": age,
            "source_values": source_values(account) or None, "kind": account.kind.value,
        }
        suffix = f"; password last set {age} days ago" if age is not None else ""
        findings.append(account_finding(
            META, account, f"{account.username}'s password never expires{suffix}",
            {k: v for k, v in evidence.items() if v is not None}, raised_if_privileged(account, META.severity),
        ))
    return findings


RULE = Rule(META, evaluate)
