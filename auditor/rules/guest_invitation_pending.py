"""guest-invitation-pending: guests invited long ago who never accepted, still enabled."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, SOC2, refs
from auditor.model import Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, RuleParameter, account_finding, source_values
from auditor.timeconv import to_iso

META = RuleMeta(
    id="guest-invitation-pending",
    area="Dormant accounts",
    examines="accounts",
    title="Guest invitation never accepted",
    description="Enabled guest accounts whose invitation has been pending acceptance for longer than "
    "days (default 30): access granted to someone who never took it up, and a redeemable "
    "invitation anyone holding the link may use.",
    severity=Severity.LOW,
    remediation="Delete the guest, or resend the invitation if the collaboration is still current.",
    controls=refs((CIS, "5.1"), (CIS, "6.1"), (NIST, "AC-2"), (ISO, "A.5.16"), (SOC2, "CC6.2")),
    parameters=(RuleParameter("days", "int", "days an invitation may stay unaccepted", 30, minimum=1, maximum=3650,
                              threshold="guest_invitation_days"),),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    limit = int(ctx.parameter(META, "days"))
    findings = []
    for account in inventory.accounts:
        since = account.invitation_pending_since
        if since is None or not account.usable_at(ctx.as_of) or (ctx.as_of - since).days <= limit:
            continue
        days = (ctx.as_of - since).days
        findings.append(account_finding(
            META, account, f"{account.username} was invited {days} days ago and has not accepted",
            {"invitation_pending_since": to_iso(since), "days_pending": days, "threshold_days": limit,
             "source_values": source_values(account)},
        ))
    return findings


RULE = Rule(META, evaluate)
