"""never-used-enabled: enabled accounts that were never used, past the new-account grace period."""

from __future__ import annotations

from auditor.activity import ActivityState
from auditor.controls import CIS, ISO, NIST, SOC2, refs
from auditor.model import Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged

META = RuleMeta(
    id="never-used-enabled",
    area="Dormant accounts",
    examines="accounts",
    title="Enabled accounts never used",
    description="Enabled accounts with no recorded sign-in, created longer ago than new_account_grace_days. "
    "Often provisioned for someone who never started, or left before first use.",
    severity=Severity.MEDIUM,
    remediation="Check whether the account is still needed; disable it if nobody claims it.",
    controls=refs((CIS, "5.1"), (CIS, "5.3"), (NIST, "AC-2(3)"), (ISO, "A.5.16"), (SOC2, "CC6.2")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = []
    for account, verdict in ctx.usable_in_state(inventory, ActivityState.NEVER_USED):
        age = f"{(ctx.as_of - account.created_at).days} days ago" if account.created_at else "at an unknown date"
        evidence = {**verdict.evidence, "grace_days": ctx.settings.new_account_grace_days,
                    "privileged": account.privileged, "kind": account.kind.value,
                    # Without a creation date the grace period cannot be judged: it may be brand new.
                    "confidence": "high" if account.created_at else "low"}
        severity = raised_if_privileged(account, META.severity) if account.created_at else Severity.LOW
        findings.append(account_finding(
            META, account, f"{account.username} was created {age} and has never been used", evidence, severity,
        ))
    return findings


RULE = Rule(META, evaluate)
