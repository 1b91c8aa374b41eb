"""change-volume-spike: days with far more account changes than the trailing baseline."""

from __future__ import annotations

from auditor.change_volume import find_spikes
from auditor.controls import CIS, ISO, NIST, SOC2, refs
from auditor.model import Finding, Inventory, Severity, Subject
from auditor.rules.base import Rule, RuleContext, RuleMeta, RuleParameter

META = RuleMeta(
    id="change-volume-spike",
    area="Account changes",
    examines="change_events",
    marks=("change_spike",),
    title="Spike in account changes",
    description="A day whose change count exceeds the median plus k times the median absolute deviation of "
    "the trailing baseline (baseline_days, k) and at least min_changes. Mass creations, disables or resets "
    "are how both reorganisations and attacks look; either deserves a ticket that explains it.",
    severity=Severity.MEDIUM,
    remediation="Match the day's changes to a change ticket or HR event; investigate the actors otherwise.",
    controls=refs((CIS, "6.2"), (NIST, "AC-2(4)"), (ISO, "A.5.18"), (SOC2, "CC6.2")),
    parameters=(
        RuleParameter("k", "float", "how many median absolute deviations above the baseline median a day must be",
                      3.0, minimum=0.1, maximum=100, threshold="spike_k"),
        RuleParameter("baseline_days", "int", "days before the period the baseline is drawn from", 28,
                      minimum=7, maximum=365, threshold="spike_baseline_days", lookback_days=True),
        RuleParameter("min_changes", "int", "fewest changes on a day for it to be a spike", 10, minimum=1,
                      threshold="spike_min_changes"),
    ),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    findings = []
    k = float(ctx.parameter(META, "k"))
    baseline_days, min_changes = int(ctx.parameter(META, "baseline_days")), int(ctx.parameter(META, "min_changes"))
    for source in sorted({e.source for e in inventory.change_events}):
        events = [e for e in inventory.change_events if e.source == source]
        spikes, _why_not = find_spikes(
            events, ctx.period_start, ctx.as_of, baseline_days=baseline_days,
            k=k, min_changes=min_changes,
        )
        for spike in spikes:
            on_day = [e for e in events if e.at.date() == spike.day]
            actions: dict[str, int] = {}
            for event in on_day:
                actions[event.action.value] = actions.get(event.action.value, 0) + 1
            findings.append(Finding(
                rule=META.id, severity=META.severity, source=source,
                subject=Subject("source", f"{source}@{spike.day.isoformat()}", f"{source} on {spike.day.isoformat()}"),
                message=f"{spike.count} account changes in {source} on {spike.day.isoformat()}, against a "
                f"baseline median of {spike.baseline_median:g} per day",
                evidence={
                    "day": spike.day.isoformat(), "count": spike.count, "per_action": actions,
                    "baseline_days": spike.baseline_days, "baseline_median": spike.baseline_median,
                    "baseline_mad": spike.baseline_mad, "k": k, "threshold": spike.threshold,
                    "actors": sorted({e.actor for e in on_day if e.actor})[:20],
                },
                controls=META.controls,
            ))
    return findings


RULE = Rule(META, evaluate)
