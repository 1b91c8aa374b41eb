"""review-revocation-not-applied: a reviewer decided to revoke an account and it can still sign in."""

from __future__ import annotations

from auditor.controls import ISO, NIST, PCI, SOC2, refs
from auditor.model import Finding, Inventory, Severity
from auditor.review_outcomes import revocations
from auditor.rules.base import Rule, RuleContext, RuleMeta, RuleParameter, account_finding, raised_if_privileged
from auditor.timeconv import to_iso

META = RuleMeta(
    id="review-revocation-not-applied",
    area="Offboarding and ownership",
    examines="accounts",
    title="Access-review revocations not carried out",
    description="An access review decided to revoke the account (auditor review import), and grace_days later "
    "it is still enabled. The review happened; its outcome did not.",
    severity=Severity.HIGH,
    remediation="Disable or remove the account as the reviewer decided, or record a new decision in the next "
    "campaign with the reason it stays.",
    controls=refs((SOC2, "CC6.2"), (SOC2, "CC6.3"), (ISO, "A.5.18"), (PCI, "7.2.4"), (NIST, "AC-2 j")),
    needs_reviews=True,
    parameters=(RuleParameter("grace_days", "int", "days allowed to carry a revocation out", 14, 0, 365),),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    grace = int(ctx.parameter(META, "grace_days"))
    findings = []
    for decided, account, outcome in revocations(inventory, ctx.as_of):
        days = (ctx.as_of - decided.decision.decided_at).days
        if account is None or outcome != "not carried out" or days < grace:
            continue
        evidence = {"campaign": decided.campaign.id, "packet": decided.packet.id,
                    "reviewer": decided.packet.reviewer, "decided_at": to_iso(decided.decision.decided_at),
                    "days_since_decision": days, "grace_days": grace, "comment": decided.decision.comment,
                    "privileged": account.privileged}
        findings.append(account_finding(
            META, account, f"{account.username}: revocation decided by {decided.packet.reviewer} {days} days ago "
            f"(campaign {decided.campaign.id}) and the account is still enabled", evidence,
            raised_if_privileged(account, META.severity)))
    return findings


RULE = Rule(META, evaluate)
