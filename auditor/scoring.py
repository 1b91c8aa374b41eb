"""The one place accounts and policies are judged: activity state (``classify_activity``) and policy strength
(``PolicyRater``). Rules ask through their context; the engine then freezes every verdict into
:class:`Verdicts`, plain data that KPIs, views, exports and the report read, and that history stores, so a
past run re-renders without judging anything again.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping
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


def _split_key(key: str) -> tuple[str, str]:
    """(source, id) of a :func:`verdict_key`; ``KeyError`` for a text that is not one."""
    length, colon, rest = key.partition(":")
    size = int(length) if colon and length.isascii() and length.isdigit() else -1
    if not 0 <= size <= len(rest) or str(size) != length:  # "01:" or "١:" is no key verdict_key makes
        raise KeyError(key)
    return rest[:size], rest[size:]


class AccountVerdicts(Mapping[str, AccountVerdict]):
    """Accounts' verdicts by source, then by the account's own id: a mapping of :func:`verdict_key` texts, as
    the stored result writes it, that makes no such text to look a verdict up. At a million accounts the texts
    were 90 MB, and the eight or so lookups an account a run (rows, report, KPIs) each made one."""

    __slots__ = ("_by_source",)

    def __init__(self, items: Mapping[str, AccountVerdict] | None = None) -> None:
        self._by_source: dict[str, dict[str, AccountVerdict]] = {}
        for key, verdict in (items or {}).items():
            self.put(*_split_key(key), verdict)

    def put(self, source: str, account_id: str, verdict: AccountVerdict) -> None:
        by_id = self._by_source.get(source)
        if by_id is None:
            by_id = self._by_source[source] = {}
        by_id[account_id] = verdict

    def of(self, source: str, account_id: str) -> AccountVerdict | None:
        by_id = self._by_source.get(source)
        return None if by_id is None else by_id.get(account_id)

    def __getitem__(self, key: str) -> AccountVerdict:
        verdict = self.of(*_split_key(key))
        if verdict is None:
            raise KeyError(key)
        return verdict

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items())

    def __len__(self) -> int:
        return sum(map(len, self._by_source.values()))

    def _items(self) -> Iterator[tuple[str, AccountVerdict]]:
        for source, by_id in self._by_source.items():
            prefix = f"{len(source)}:{source}"
            for account_id, verdict in by_id.items():
                yield prefix + account_id, verdict

    def items(self) -> ItemsView[str, AccountVerdict]:  # Mapping's own would look every key up again
        return _ItemsOnce(self)

    def __repr__(self) -> str:
        return f"AccountVerdicts({dict(self._items())!r})"


class _ItemsOnce(ItemsView[str, AccountVerdict]):
    _mapping: AccountVerdicts

    def __iter__(self) -> Iterator[tuple[str, AccountVerdict]]:
        return self._mapping._items()


@dataclass
class Verdicts:
    """Every account's and policy's verdict, by (source, id). Accounts of people who left (history copies in
    the identity graph) are here too."""

    accounts: AccountVerdicts = field(default_factory=AccountVerdicts)
    policies: dict[str, PolicyRating] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.accounts, AccountVerdicts):  # read back from history, or made by hand
            self.accounts = AccountVerdicts(self.accounts)

    def of(self, account: Account) -> AccountVerdict:
        try:  # the mapping's own dicts: this is asked some eight times an account a run
            return self.accounts._by_source[account.source][account.id]
        except KeyError:
            raise KeyError(verdict_key(account.source, account.id)) from None

    def rating(self, policy: PasswordPolicy) -> PolicyRating:
        return self.policies[verdict_key(policy.source, policy.id)]


class Scorer:
    """Judges on demand and remembers: asked again about the same account or policy, it answers from the
    verdict it reached (objects are held, so an id() is never reused while remembered)."""

    def __init__(self, as_of: datetime, inactive_days: Callable[[str], int], grace_days: int,
                 rater: PolicyRater) -> None:
        self.as_of, self.inactive_days, self.grace_days, self.rater = as_of, inactive_days, grace_days, rater
        self._activity: dict[int, ActivityVerdict] = {}  # a verdict holds its account
        self._ratings: dict[int, tuple[PasswordPolicy, PolicyRating]] = {}

    def activity(self, account: Account) -> ActivityVerdict:
        verdict = self._activity.get(id(account))
        if verdict is None:
            verdict = classify_activity(account, self.as_of, self.inactive_days(account.source), self.grace_days)
            self._activity[id(account)] = verdict
        return verdict

    def rating(self, policy: PasswordPolicy) -> PolicyRating:
        known = self._ratings.get(id(policy))
        if known is None:
            known = self._ratings[id(policy)] = (policy, self.rater.rate(policy))
        return known[1]

    def verdicts(self, inventory: Inventory) -> Verdicts:
        """Every verdict frozen. The audit's last question: each activity verdict remembered is let go once frozen
        (asked again, it is reached again), so that a million of them are not held beside the frozen ones."""
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
            if verdicts.accounts.of(account.source, account.id) is not None:
                continue
            activity = self._activity.pop(id(account), None) or self.activity(account)
            policy_source, policy_id = account.policy_key
            governing = policies.get(verdict_key(policy_source, policy_id)) if policy_id is not None else None
            if governing is None:
                name, strength = None, "unknown"
            else:
                strong = governing[1].strong
                name, strength = governing[0].name, "unknown" if strong is None else "strong" if strong else "weak"
            verdict = AccountVerdict(activity.state, activity.days_since, account.state_at(self.as_of), name, strength)
            verdicts.accounts.put(account.source, account.id, shared.setdefault(verdict, verdict))
        self._activity.clear()  # its table too
        return verdicts
