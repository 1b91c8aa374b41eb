"""weak-password-policy: policies whose weakest admitted password is easy to guess."""

from __future__ import annotations

from collections import Counter

from auditor.controls import CIS, ISO, NIST, PCI, SOC2, refs
from auditor.model import AccountKind, Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, policy_finding

META = RuleMeta(
    id="weak-password-policy",
    area="Password policies",
    examines="password_policies",
    title="Weak password policy",
    description="Rates each password policy by the weakest password people actually choose that the "
    "policy still admits: popular words and the organisation's name, capitalised, with digits, years, '!' "
    "or leetspeak appended, filtered through the policy's rules and scored with zxcvbn. A policy is strong "
    "when that weakest candidate reaches thresholds.strong_policy_score (default 3 of 4).",
    severity=Severity.MEDIUM,
    remediation="Raise the minimum length (15+ for single-factor, per NIST SP 800-63B), screen passwords "
    "against a banned list (Entra Password Protection, a password filter, ppolicy check module), and require "
    "MFA; composition rules add little.",
    controls=refs((CIS, "5.2"), (NIST, "IA-5(1)"), (PCI, "8.3.6"), (ISO, "A.5.17"), (SOC2, "CC6.1")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    governed: Counter[tuple[str, str | None]] = Counter(
        a.policy_key for a in inventory.accounts
        if a.usable_at(ctx.as_of) and a.password_policy_id and a.kind != AccountKind.MACHINE
    )
    findings = []
    for policy in inventory.policies:
        rating = ctx.rating(policy)
        if rating.strong is not False:
            continue  # strong, or unknown (counted in KPIs and the report, never called weak or fine)
        severity = Severity.HIGH if (rating.score or 0) <= 1 and governed[(policy.source, policy.id)] else META.severity
        evidence = {
            **rating.as_evidence(),
            "strong_score_threshold": ctx.settings.thresholds.strong_policy_score,
            "enabled_accounts_governed": governed[(policy.source, policy.id)],
            "min_length": policy.min_length, "min_character_classes": policy.min_character_classes,
            "banned_list": policy.banned_list, "history_length": policy.history_length,
            "max_age_days": "unknown" if "max_age" in policy.unknown_settings
            else policy.max_age.days if policy.max_age else None,
            "unknown_settings": policy.unknown_settings,
            "lockout_threshold": policy.lockout_threshold, "applies_to": policy.applies_to,
        }
        findings.append(policy_finding(
            META, policy,
            f"{policy.name} admits passwords as guessable as {rating.weakest_example!r} "
            f"(zxcvbn score {rating.score}, ~10^{rating.guesses_log10} guesses)",
            evidence, severity,
        ))
    return findings


RULE = Rule(META, evaluate)
