"""person-inactive: people with no recent activity in any source, while still holding enabled accounts."""

from __future__ import annotations

from auditor.activity import ActivityState
from auditor.controls import CIS, ISO, NIST, PCI, SOC2, refs
from auditor.model import Finding, Inventory, Severity, Subject
from auditor.rules.base import Rule, RuleContext, RuleMeta
from auditor.timeconv import to_iso

META = RuleMeta(
    id="person-inactive",
    area="Dormant accounts",
    examines="people",
    needs_identity=True,
    title="People inactive everywhere",
    description="People with accounts in more than one source whose accounts, across every source that "
    "reports activity, show no use within each source's inactivity threshold, while at least one account is "
    "still enabled. A person active anywhere is not inactive; their stale accounts still show on their own "
    "under inactive-enabled (which alone covers people with one account).",
    severity=Severity.MEDIUM,
    remediation="Ask the manager whether the person still needs access (long leave, a contractor whose contract "
    "ended); disable every account of a person who has left.",
    controls=refs((CIS, "5.3"), (NIST, "AC-2(3)"), (PCI, "8.2.6"), (ISO, "A.5.18"), (SOC2, "CC6.2")),
)

STALE = (ActivityState.INACTIVE, ActivityState.NEVER_USED)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    graph = inventory.identity
    if graph is None:
        return []
    findings = []
    for person in graph.people:
        accounts = [link.account for link in person.links]
        enabled = [a for a in accounts if a.usable_at(ctx.as_of)]
        verdicts = [(a, ctx.activity(a)) for a in accounts]
        known = [(a, v) for a, v in verdicts if v.state != ActivityState.UNKNOWN]
        single_source = len({a.source for a in accounts}) < 2
        if single_source or not enabled or not known or any(v.state not in STALE for _, v in known):
            continue
        latest = max((a.last_activity_at for a, _ in known if a.last_activity_at), default=None)
        last = f"last active {latest.date()}" if latest else "never active"
        findings.append(Finding(
            rule=META.id, severity=META.severity, source=graph.authoritative_source,
            subject=Subject("person", person.id, person.name),
            message=f"{person.name} is {last} in every source that reports activity, with "
            f"{len(enabled)} enabled account(s)",
            evidence={
                "last_activity_anywhere": to_iso(latest),
                "accounts": [{"source": a.source, "username": a.username, "state": v.state.value,
                              "last_activity_at": to_iso(a.last_activity_at), "enabled": a.usable_at(ctx.as_of)}
                             for a, v in verdicts],
            },
            controls=META.controls,
        ))
    return findings


RULE = Rule(META, evaluate)
