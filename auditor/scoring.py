"""The one place accounts and policies are judged: activity state (``classify_activity``) and policy strength
(``PolicyRater``). Rules ask through their context; the engine then freezes every verdict into
:class:`Verdicts`, plain data that KPIs, views, exports and the report read, and that history stores, so a
past run re-renders without judging anything again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from auditor.activity import ActivityState, ActivityVerdict, classify_activity
from auditor.model import Account, Inventory, PasswordPolicy
from auditor.policy_rating import PolicyRater, PolicyRating


@dataclass(frozen=True, slots=True)
class AccountVerdict:
    activity: ActivityState
    days_since_activity: int | None
    state: str  # "enabled" | "disabled" | "expired" | "unknown" (Account.state_at)
    policy_name: str | None  # the governing policy, None when not known
    policy_strength: str  # "strong" | "weak" | "unknown"

    @property
    def usable(self) -> bool:
        """Known to be enabled and not expired: can sign in."""
        return self.state == "enabled"


def verdict_key(source: str, item_id: str) -> str:
    return f"{len(source)}:{source}{item_id}"  # unambiguous whatever either part holds


@dataclass
class Verdicts:
    """Every account's and policy's verdict, by (source, id). Accounts of people who left (history copies in
    the identity graph) are here too."""

    accounts: dict[str, AccountVerdict] = field(default_factory=dict)
    policies: dict[str, PolicyRating] = field(default_factory=dict)

    def of(self, account: Account) -> AccountVerdict:
        return self.accounts[verdict_key(account.source, account.id)]

    def rating(self, policy: PasswordPolicy) -> PolicyRating:
        return self.policies[verdict_key(policy.source, policy.id)]


class Scorer:
    """Judges on demand and remembers: asked again about the same account or policy, it answers from the
    verdict it reached (objects are held, so an id() is never reused while remembered)."""

    def __init__(self, as_of: datetime, inactive_days: Callable[[str], int], grace_days: int,
                 rater: PolicyRater) -> None:
        self.as_of, self.inactive_days, self.grace_days, self.rater = as_of, inactive_days, grace_days, rater
        self._activity: dict[int, tuple[Account, ActivityVerdict]] = {}
        self._ratings: dict[int, tuple[PasswordPolicy, PolicyRating]] = {}

    def activity(self, account: Account) -> ActivityVerdict:
        known = self._activity.get(id(account))
        if known is None:
            verdict = classify_activity(account, self.as_of, self.inactive_days(account.source), self.grace_days)
            known = self._activity[id(account)] = (account, verdict)
        return known[1]

    def rating(self, policy: PasswordPolicy) -> PolicyRating:
        known = self._ratings.get(id(policy))
        if known is None:
            known = self._ratings[id(policy)] = (policy, self.rater.rate(policy))
        return known[1]

    def verdicts(self, inventory: Inventory) -> Verdicts:
        policies: dict[str, tuple[PasswordPolicy, PolicyRating]] = {}
        for policy in inventory.policies:  # the first of a repeated (source, id) governs, as Inventory.policy says
            policies.setdefault(verdict_key(policy.source, policy.id), (policy, self.rating(policy)))
        accounts: Iterable[Account] = inventory.accounts
        if inventory.identity is not None:
            accounts = [*accounts, *(link.account for person in inventory.identity.people for link in person.links)]
        verdicts = Verdicts(policies={k: rating for k, (_, rating) in policies.items()})
        # Accounts share equal verdicts: a few thousand distinct ones for a million accounts, 72 bytes each saved.
        shared: dict[AccountVerdict, AccountVerdict] = {}
        for account in accounts:
            key = verdict_key(account.source, account.id)
            if key in verdicts.accounts:
                continue
            activity = self.activity(account)
            policy_source, policy_id = account.policy_key
            governing = policies.get(verdict_key(policy_source, policy_id)) if policy_id is not None else None
            if governing is None:
                name, strength = None, "unknown"
            else:
                strong = governing[1].strong
                name, strength = governing[0].name, "unknown" if strong is None else "strong" if strong else "weak"
            verdict = AccountVerdict(activity.state, activity.days_since, account.state_at(self.as_of), name, strength)
            verdicts.accounts[key] = shared.setdefault(verdict, verdict)
        return verdicts
