"""account-change-volume: how many account changes happened in the audit period, per day and action."""

from __future__ import annotations

from auditor.change_volume import in_period, per_action, per_day
from auditor.controls import CIS, ISO, SOC2, refs
from auditor.model import Finding, Inventory, Severity, Subject
from auditor.rules.base import Rule, RuleContext, RuleMeta

META = RuleMeta(
    id="account-change-volume",
    area="Account changes",
    examines="change_events",
    title="Account change volume",
    description="Changes per day and per action (created, deleted, enabled, disabled, password_reset, "
    "modified, group_changed) over the audit period, from each source's change log and from differences "
    "between successive snapshots. Informational: it answers 'how many accounts changed last month'.",
    severity=Severity.INFO,
    remediation="Reconcile creations and deletions against joiner/leaver records.",
    controls=refs((CIS, "6.1"), (CIS, "6.2"), (ISO, "A.5.18"), (SOC2, "CC6.2")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = []
    sources = sorted({e.source for e in inventory.change_events})
    for source in sources:
        events = in_period((e for e in inventory.change_events if e.source == source), ctx.period_start, ctx.as_of)
        if not events:
            continue
        actions = per_action(events)
        days = per_day(events)
        findings.append(Finding(
            rule=META.id, severity=META.severity, source=source, subject=Subject("source", source, source),
            message=f"{len(events)} account changes in {source} over the last {ctx.settings.period_days} days: "
            + ", ".join(f"{n} {a}" for a, n in actions.most_common()),
            evidence={
                "period_days": ctx.settings.period_days, "total": len(events), "per_action": dict(actions),
                "per_day": {d.isoformat(): n for d, n in sorted(days.items())},
                "from_snapshot_differences": sum(1 for e in events if e.origin == "snapshot"),
            },
            controls=META.controls,
        ))
    return findings


RULE = Rule(META, evaluate)
