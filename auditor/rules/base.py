"""What a rule is: metadata kept beside its code, and a pure function of the inventory and config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auditor.activity import ActivityState, ActivityVerdict
from auditor.config import AuditSettings
from auditor.model import Account, ControlRef, Finding, Inventory, PasswordPolicy, Severity, Subject
from auditor.policy_rating import PolicyRater, PolicyRating
from auditor.scoring import Scorer

# The report's summary areas, in the order it shows them; every rule declares the one it belongs to.
AREAS = ("Dormant accounts", "Offboarding and ownership", "Password policies", "Multi-factor authentication",
         "Account changes")
# What a rule examines: the population controls.json reports for the controls it tests.
POPULATIONS = ("accounts", "password_policies", "change_events", "people")


@dataclass(frozen=True)
class RuleMeta:
    id: str  # stable: reports, exclusions and scripts refer to it
    area: str  # one of AREAS: where the summary counts its open findings
    examines: str  # one of POPULATIONS
    title: str
    description: str
    severity: Severity  # default; a rule may raise it (e.g. for privileged accounts)
    remediation: str
    controls: tuple[ControlRef, ...]
    needs_identity: bool = False  # evaluated only when accounts are linked to people ([identity])

    def __post_init__(self) -> None:
        if self.area not in AREAS or self.examines not in POPULATIONS:
            raise ValueError(f"rule {self.id}: area {self.area!r} / examines {self.examines!r} not declared")


@dataclass(frozen=True)
class RuleContext:
    as_of: datetime
    settings: AuditSettings
    inactive_days: Callable[[str], int]  # per-source threshold
    rater: PolicyRater
    scorer: Scorer = field(init=False, repr=False, compare=False)  # every verdict of this audit, reached once

    def __post_init__(self) -> None:
        object.__setattr__(self, "scorer", Scorer(self.as_of, self.inactive_days, self.settings.new_account_grace_days,
                                                  self.rater))

    @property
    def period_start(self) -> datetime:
        return self.as_of - timedelta(days=self.settings.period_days)

    def activity(self, account: Account) -> ActivityVerdict:
        """The account's activity state under this audit's thresholds (its source's inactive_days)."""
        return self.scorer.activity(account)

    def rating(self, policy: PasswordPolicy) -> PolicyRating:
        return self.scorer.rating(policy)

    def usable_in_state(self, inventory: Inventory, state: ActivityState) -> Iterator[tuple[Account, ActivityVerdict]]:
        """Accounts that can still sign in and are in ``state``, with the verdict's evidence."""
        for account in inventory.accounts:
            if account.usable_at(self.as_of):
                verdict = self.activity(account)
                if verdict.state == state:
                    yield account, verdict


@dataclass(frozen=True)
class Rule:
    meta: RuleMeta
    evaluate: Callable[[Inventory, RuleContext], list[Finding]]


def account_finding(
    meta: RuleMeta, account: Account, message: str, evidence: dict[str, Any], severity: Severity | None = None,
) -> Finding:
    return Finding(
        rule=meta.id, severity=severity or meta.severity, source=account.source,
        subject=Subject("account", account.id, account.username), message=message,
        evidence=evidence, controls=list(meta.controls),
    )


def policy_finding(
    meta: RuleMeta, policy: PasswordPolicy, message: str, evidence: dict[str, Any], severity: Severity | None = None,
) -> Finding:
    return Finding(
        rule=meta.id, severity=severity or meta.severity, source=policy.source,
        subject=Subject("policy", policy.id, policy.name), message=message,
        evidence=evidence, controls=list(meta.controls),
    )


def raised_if_privileged(account: Account, base: Severity) -> Severity:
    """Privileged accounts are one step more severe: their misuse costs more."""
    if not account.privileged:
        return base
    order = list(Severity)
    return order[min(order.index(base) + 1, len(order) - 1)]
