"""What a rule is: metadata kept beside its code, and a pure function of the inventory and config."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
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
# What a rule's findings mean beyond its area, for the views that single them out. A rule that declares a mark
# promises the evidence fields listed here; views find such rules by mark, never by rule id.
MARKS: dict[str, tuple[str, ...]] = {
    # Someone left and an account of theirs is still enabled: the people view and the offboarding KPI.
    "departure_gap": ("person", "days_since_departure", "used_after_departure"),
    # A day of unusual change volume: highlighted in the change chart.
    "change_spike": ("day",),
}


@dataclass(frozen=True)
class RuleParameter:
    """A setting of one rule, given in its ``[rules.<id>]`` table."""

    name: str
    kind: str  # "int" | "float"
    description: str
    default: int | float
    minimum: int | float | None = None
    maximum: int | float | None = None
    # The [audit.thresholds] key that set it before rules had tables: still read, the rule's table wins.
    threshold: str | None = None
    # Days of change history the rule reads before the audit period: the engine reads that far back.
    lookback_days: bool = False

    def problem(self, value: object) -> str | None:
        """Why ``value`` cannot be this parameter's value, or None."""
        allowed: tuple[type, ...] = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            wanted = "an integer" if self.kind == "int" else "a number"
            return f"must be {wanted} (got {type(value).__name__} {value!r})"
        assert isinstance(value, int | float)
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum} (got {value})"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum} (got {value})"
        return None


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
    needs_reviews: bool = False  # evaluated only once the history holds an access-review campaign
    parameters: tuple[RuleParameter, ...] = ()  # settable in [rules.<id>]
    marks: tuple[str, ...] = ()  # from MARKS

    def __post_init__(self) -> None:
        if self.area not in AREAS or self.examines not in POPULATIONS or not set(self.marks) <= set(MARKS):
            raise ValueError(f"rule {self.id}: area {self.area!r} / examines {self.examines!r} / marks "
                             f"{self.marks!r} not declared")


@dataclass(frozen=True)
class RuleContext:
    as_of: datetime
    settings: AuditSettings
    inactive_days: Callable[[str], int]  # per-source threshold
    rater: PolicyRater
    parameters: Mapping[str, Mapping[str, int | float]] = field(default_factory=dict)  # [rules.<id>] tables
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

    def parameter(self, meta: RuleMeta, name: str) -> int | float:
        """The rule's setting: its [rules.<id>] table, else the legacy [audit.thresholds] key, else the default."""
        declared = next(p for p in meta.parameters if p.name == name)
        given = self.parameters.get(meta.id, {})
        if name in given:
            return given[name]
        if declared.threshold is not None:
            value: int | float = getattr(self.settings.thresholds, declared.threshold)
            return value
        return declared.default

    def lookback_days(self, rules: Iterable[RuleMeta]) -> int:
        """The most days of change history before the period that any of ``rules`` reads."""
        return max((int(self.parameter(meta, p.name)) for meta in rules for p in meta.parameters
                    if p.lookback_days), default=0)

    def rating(self, policy: PasswordPolicy) -> PolicyRating:
        return self.scorer.rating(policy)

    def usable_in_state(self, inventory: Inventory, *states: ActivityState,
                        ) -> Iterator[tuple[Account, ActivityVerdict]]:
        """Accounts that can still sign in and are in one of ``states``, with the verdict's evidence."""
        for account in inventory.accounts:
            if account.usable_at(self.as_of):
                verdict = self.activity(account)
                if verdict.state in states:
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
        evidence=evidence, controls=meta.controls,
    )


def policy_finding(
    meta: RuleMeta, policy: PasswordPolicy, message: str, evidence: dict[str, Any], severity: Severity | None = None,
) -> Finding:
    return Finding(
        rule=meta.id, severity=severity or meta.severity, source=policy.source,
        subject=Subject("policy", policy.id, policy.name), message=message,
        evidence=evidence, controls=meta.controls,
    )


def source_values(account: Account) -> dict[str, str]:
    """The source's own values for the account, as its connector chose to quote them: rules never pick vendor
    attribute names (userAccountControl, passwordPolicies) themselves."""
    return dict(account.raw)


def raised_if_privileged(account: Account, base: Severity) -> Severity:
    """Privileged accounts are one step more severe: their misuse costs more."""
    if not account.privileged:
        return base
    order = list(Severity)
    return order[min(order.index(base) + 1, len(order) - 1)]
