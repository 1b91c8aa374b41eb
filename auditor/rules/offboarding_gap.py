"""offboarding-gap: accounts still enabled after their person left the authoritative directory."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, PCI, SOC2, refs
from auditor.model import Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged
from auditor.timeconv import to_iso

META = RuleMeta(
    id="offboarding-gap",
    area="Offboarding and ownership",
    examines="people",
    marks=("departure_gap",),
    needs_identity=True,
    title="Accounts left enabled after offboarding",
    description="Accounts in other sources that are still enabled while the person's account in the "
    "authoritative directory is disabled or removed. The departure date comes from the directory's own "
    "status time, its change log, or the first audit that saw the change; the account's last activity shows "
    "whether it was used after the person left (critical).",
    severity=Severity.HIGH,
    remediation="Disable the account now and find out why the leaver process missed this application "
    "(no SCIM deprovisioning, a local account, a manual step). Review what the account did after the departure.",
    controls=refs((CIS, "5.3"), (CIS, "6.2"), (NIST, "AC-2(3)"), (NIST, "PS-4"), (PCI, "8.2.5"), (ISO, "A.5.18"),
                  (SOC2, "CC6.2")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    graph = inventory.identity
    if graph is None:
        return []
    findings = []
    for person in graph.people:
        departure = person.departure
        if departure is None:
            continue
        directory = person.authoritative
        days_since = (ctx.as_of - departure.at).days if departure.at else None
        days_at_most = (ctx.as_of - departure.not_before).days if departure.not_before else days_since
        if departure.at is None:
            when = "on an unknown date"
        elif departure.not_before is not None:  # seen between two audits: say the window, not a false day
            when = (f"between {departure.not_before.date()} and {departure.at.date()} "
                    f"({days_since}-{days_at_most} days ago)")
        else:
            when = f"{days_since} days ago ({departure.at.date()})"
        for link in person.links[1:]:
            account = link.account
            if not account.usable_at(ctx.as_of):
                continue
            used_after = (
                account.activity_known and account.last_activity_at is not None and departure.at is not None
                and account.last_activity_at > departure.at
            )
            activity = (
                "activity unknown" if not account.activity_known
                else f"last used {account.last_activity_at.date()}" if account.last_activity_at else "never used"
            )
            message = (f"{account.username} in {account.source} is still enabled although {person.name}'s "
                       f"{graph.authoritative_source} account {directory.username} was {departure.how} {when}; "
                       f"{activity}" + (", after the departure" if used_after else ""))
            evidence = {
                "person": person.id, "person_name": person.name,
                "directory_account": f"{directory.source}:{directory.username}",
                "directory_state": departure.how, "departed_at": to_iso(departure.at),
                "days_since_departure": days_since, "departed_not_before": to_iso(departure.not_before),
                "days_since_departure_at_most": days_at_most, "departure_evidence": departure.evidence,
                "linked_by": link.key, "linked_value": link.value,
                "account_last_activity_at": to_iso(account.last_activity_at),
                "account_activity_known": account.activity_known,
                "used_after_departure": used_after, "privileged": account.privileged,
            }
            severity = Severity.CRITICAL if used_after else raised_if_privileged(account, META.severity)
            findings.append(account_finding(META, account, message, evidence, severity))
    return findings


RULE = Rule(META, evaluate)
