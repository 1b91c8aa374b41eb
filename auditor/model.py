"""The normalized inventory every connector produces and every rule reads.

All datetimes are aware UTC (see ``auditor.timeconv``). ``None`` means "not known" unless a field's
comment says otherwise; rules must not read ``None`` as "false" or "never".
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from auditor.compact import PackedStrings, SharedKeys, no_items
from auditor.timeconv import from_iso8601, to_iso


class AccountKind(StrEnum):
    HUMAN = "human"
    SERVICE = "service"
    GUEST = "guest"
    MACHINE = "machine"
    BOT = "bot"  # an app or integration user in a SaaS tool (Slack bots, GitHub apps)
    UNKNOWN = "unknown"


class ChangeAction(StrEnum):
    CREATED = "created"
    DELETED = "deleted"
    ENABLED = "enabled"
    DISABLED = "disabled"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an action name, not a secret
    MODIFIED = "modified"
    GROUP_CHANGED = "group_changed"


class SourceState(StrEnum):
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANKS[self]  # findings are sorted by it: listing the members each time cost seconds


_SEVERITY_RANKS = {severity: rank for rank, severity in enumerate(Severity)}


# Slots: a class of more than 30 attributes gets no key-sharing instance dict in CPython, and each account's own
# dict of 37 keys was 1.6 KB (1.6 GB at a million accounts); the slots are 0.3 KB.
@dataclass(slots=True)
class Account:
    source: str
    id: str  # stable within the source: objectGUID, Graph id, the export's key column
    username: str
    enabled: bool | None  # None: the source does not say (not selected, unreadable): never read as either
    kind: AccountKind = AccountKind.UNKNOWN
    email: str | None = None
    display_name: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None  # None: never expires (or unknown)
    # Activity: ``activity_known`` False means the source cannot tell (licence, permission, no field);
    # then ``last_activity_at`` is meaningless. Known and ``None`` means "never used".
    activity_known: bool = False
    activity_unknown_reason: str | None = None
    last_activity_at: datetime | None = None
    last_activity_attribute: str | None = None
    last_activity_raw: str | None = None
    activity_lag: timedelta = timedelta(0)  # how far the recorded value may trail the real last use
    password_last_set_at: datetime | None = None
    password_never_expires: bool | None = None
    password_not_required: bool | None = None
    reversible_password_encryption: bool | None = None
    mfa_registered: bool | None = None
    mfa_enforced: bool | None = None  # the source requires a second factor for this account (None: not said)
    invitation_pending_since: datetime | None = None  # an invited guest who has not accepted yet
    disabled_at: datetime | None = None  # when the source says it was disabled or deprovisioned
    privileged: bool = False
    privilege_evidence: list[str] = field(default_factory=no_items)  # none: one shared, unchangeable list
    groups: list[str] = field(default_factory=list)
    password_policy_id: str | None = None  # None: governing policy unknown
    # Set when the governing policy belongs to another source (a synced cloud account and its directory).
    password_policy_source: str | None = None
    # join keys: sid, immutable_id, employee_id (given as a dict, kept packed: see auditor.compact)
    identifiers: Mapping[str, str] = field(default_factory=dict)
    email_aliases: list[str] = field(default_factory=no_items)  # other addresses of the same mailbox
    # Licences the account holds (Entra: skuPartNumber, or the skuId when the SKU list was not readable);
    # None: the source does not say, never "no licence"
    licences: tuple[str, ...] | None = None
    # The account's manager as the source names them: "dn:<DN>" (AD manager), "id:<object id>" (Entra), or
    # "ref:<value>" (Okta managerId, a Google relation of type manager: an id, login or address). None: not said.
    manager: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict)  # source values quoted as evidence (kept packed)

    def __post_init__(self) -> None:
        if type(self.raw) is not PackedStrings:
            self.raw = PackedStrings(self.raw)
        if type(self.identifiers) is not PackedStrings:
            self.identifiers = PackedStrings(self.identifiers)

    @property
    def automated(self) -> bool:
        """Not a person's account: services, machines and bots are never offboarded with a person."""
        return self.kind in (AccountKind.SERVICE, AccountKind.MACHINE, AccountKind.BOT)

    @property
    def policy_key(self) -> tuple[str, str | None]:
        """(source, id) of the governing password policy."""
        return (self.password_policy_source or self.source, self.password_policy_id)

    def in_group(self, group: str) -> bool:
        """Member of ``group`` as the config names it (exclusions, review owners): case-insensitive."""
        wanted = group.lower()
        return any(g.lower() == wanted for g in self.groups)

    def usable_at(self, moment: datetime) -> bool:
        """Known to be enabled and not past its expiry date: the account can still be used to sign in.
        An account whose enabled state is unknown is not usable here and not disabled either: see
        :meth:`state_at`."""
        return self.enabled is True and (self.expires_at is None or self.expires_at > moment)

    def state_at(self, moment: datetime) -> str:
        """"enabled" | "disabled" | "expired" | "unknown": how reports and exports name the account's state."""
        if self.enabled is None:
            return "unknown"
        if not self.enabled:
            return "disabled"
        return "enabled" if self.expires_at is None or self.expires_at > moment else "expired"


@dataclass
class PasswordPolicy:
    source: str
    id: str
    name: str
    settings_known: bool = True  # False: the policy exists but its settings could not be read
    unknown_reason: str | None = None
    # Settings the source did not give or we could not read (e.g. "max_age"): their fields are not the
    # documented default, they are unknown. Listed here because ``max_age=None`` alone means "never".
    unknown_settings: list[str] = field(default_factory=list)
    min_length: int | None = None
    min_character_classes: int = 0  # of upper/lower/digit/symbol; AD complexity = 3
    min_lowercase: int = 0
    min_uppercase: int = 0
    min_digits: int = 0
    min_symbols: int = 0
    excludes_username: bool = False
    history_length: int | None = None
    max_age: timedelta | None = None  # None: passwords never expire
    min_age: timedelta | None = None
    lockout_threshold: int | None = None  # 0: no lockout
    banned_list: bool = False  # a banned-password list is enforced at change time
    reversible_encryption: bool | None = None
    applies_to: list[str] = field(default_factory=list)
    precedence: int | None = None  # lower wins (AD PSO semantics)
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ChangeEvent:
    source: str
    at: datetime
    account_id: str
    action: ChangeAction
    username: str | None = None
    actor: str | None = None
    origin: str = "source"  # "source": the source's own log; "snapshot": a difference between runs
    detail: str | None = None
    # True when only the window is known (a snapshot difference dated at the later snapshot): such
    # events count in period totals but not in per-day spike detection, where they would bunch up.
    approximate_time: bool = False


@dataclass
class SourceStatus:
    name: str
    type: str
    state: SourceState = SourceState.OK
    accounts: int = 0
    policies: int = 0
    change_events: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    collected_at: datetime | None = None


@dataclass(frozen=True)
class AccountLink:
    account: Account
    key: str  # the correlation key that made the link ("authoritative" for the directory account itself)
    value: str | None = None  # the normalised value both accounts share


@dataclass(frozen=True)
class DepartedAccount:
    """An account that history holds and the current read of its source no longer has."""

    account: Account
    missing_since: datetime  # as-of time of the first audit that did not find it
    last_seen: datetime | None = None  # as-of time of the last audit that found it


@dataclass(frozen=True)
class Departure:
    """The authoritative account was disabled or removed: the person has left (or is on leave)."""

    how: str  # "disabled" | "deleted"
    at: datetime | None  # None: the change log and history do not date it
    evidence: str  # where the date comes from
    # Set when only a window is known (a change seen between two audits): it happened after this, by ``at``.
    not_before: datetime | None = None


@dataclass
class Person:
    id: str  # "<authoritative source>:<account id>"
    name: str
    # The directory account: the current one, or the last copy history holds when it has been removed.
    authoritative: Account
    links: list[AccountLink]  # every account of the person, the authoritative one first
    departure: Departure | None = None


@dataclass(frozen=True)
class UnlinkedAccount:
    account: Account
    reason: str  # "no_key" | "no_match" | "ambiguous"
    detail: str


@dataclass
class IdentityGraph:
    authoritative_source: str
    keys: tuple[str, ...]
    people: list[Person] = field(default_factory=list)
    unlinked: list[UnlinkedAccount] = field(default_factory=list)
    service_accounts: tuple[str, ...] = ()  # username globs of declared service accounts
    _by_account: dict[tuple[str, str], Person] = field(default_factory=dict, repr=False)

    def person_of(self, account: Account) -> Person | None:
        if not self._by_account:
            self._by_account = {(link.account.source, link.account.id): p for p in self.people for link in p.links}
        return self._by_account.get((account.source, account.id))

    def declared_service(self, account: Account) -> bool:
        name = account.username.casefold()
        return any(fnmatch.fnmatchcase(name, pattern.casefold()) for pattern in self.service_accounts)


@dataclass(frozen=True)
class ReviewDecision:
    """A reviewer's decision on one account in an access-review campaign (auditor.reviews)."""

    source: str
    account_id: str
    username: str
    decision: str  # keep | revoke | modify
    comment: str
    decided_at: datetime  # when the packet carrying it was imported


@dataclass(frozen=True)
class ReviewPacket:
    id: str
    reviewer: str
    digest: str  # SHA-256 of the campaign, packet and account list: an edited packet is refused
    accounts: list[list[str]]  # [source, account id, username] of every account in scope, in the packet's order
    decisions: list[ReviewDecision] = field(default_factory=list)


@dataclass(frozen=True)
class ReviewCampaign:
    id: str
    run_id: str  # the audit whose accounts it reviews
    created_at: datetime
    by: str  # manager | source | group
    packets: list[ReviewPacket]
    unassigned: list[list[str]]  # [source, account id, username] with no reviewer


@dataclass
class Inventory:
    accounts: list[Account] = field(default_factory=list)
    policies: list[PasswordPolicy] = field(default_factory=list)
    change_events: list[ChangeEvent] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    identity: IdentityGraph | None = None  # set when [identity] is configured and its directory was read
    reviews: list[ReviewCampaign] = field(default_factory=list)  # access-review campaigns in the history

    def policy_for(self, account: Account) -> PasswordPolicy | None:
        return self.policy(*account.policy_key)

    def policy(self, source: str, policy_id: str | None) -> PasswordPolicy | None:
        if policy_id is None:
            return None
        for policy in self.policies:
            if policy.source == source and policy.id == policy_id:
                return policy
        return None


@dataclass(frozen=True)
class ControlRef:
    framework: str  # e.g. "CIS Controls v8"
    control: str  # e.g. "5.3"


@dataclass(frozen=True, slots=True)
class Subject:
    type: str  # "account" | "person" | "policy" | "source"
    id: str
    name: str


@dataclass(slots=True)
class Finding:
    rule: str
    severity: Severity
    source: str
    subject: Subject
    message: str
    evidence: Mapping[str, Any]  # given as a dict, kept as SharedKeys (auditor.compact): a rule's share their keys
    controls: tuple[ControlRef, ...]  # the rule's own tuple, shared by its findings (not a list each)
    # Set when an exclusion matched: the finding is kept (auditors want to see it) but not counted.
    excluded_by: str | None = None
    # Set when an accepted-risk entry (owner, reason, expiry) covers it: shown as accepted, not counted.
    accepted_by: str | None = None

    def __post_init__(self) -> None:
        if type(self.evidence) is not SharedKeys:
            self.evidence = SharedKeys(self.evidence)

    @property
    def status(self) -> str:
        return "excluded" if self.excluded_by else "accepted" if self.accepted_by else "open"

    @property
    def status_note(self) -> str | None:
        if self.excluded_by:
            return f"Excluded by {self.excluded_by}"
        return f"Accepted risk: {self.accepted_by}" if self.accepted_by else None

    @property
    def key(self) -> str:
        """Identity of a finding across runs: same rule, source and subject."""
        return f"{self.rule}|{self.source}|{self.subject.type}|{self.subject.id}"


# ---- serialisation (history snapshots and exports share it) ----


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, datetimes and timedeltas to plain JSON values. Private fields (``_name``: caches)
    are left out. One converter per type, made on first sight: at a million accounts the generic walk
    (``dataclasses.fields`` and ``isinstance`` chains for every value) was a third of the run."""
    kind = type(value)
    convert = _CONVERTERS.get(kind)
    if convert is None:
        convert = _CONVERTERS[kind] = _converter(kind)
    return convert(value)


def _same(value: Any) -> Any:
    return value


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): to_jsonable(v) for k, v in value.items()}


def _sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [to_jsonable(v) for v in value]


def _converter(kind: type) -> Callable[[Any], Any]:
    if dataclasses.is_dataclass(kind):
        names = tuple(f.name for f in dataclasses.fields(kind) if not f.name.startswith("_"))
        return lambda value: {name: to_jsonable(getattr(value, name)) for name in names}
    if issubclass(kind, StrEnum):
        return lambda value: value.value
    if issubclass(kind, datetime):
        return to_iso
    if issubclass(kind, timedelta):
        return lambda value: value.total_seconds()
    if issubclass(kind, PackedStrings):
        return lambda value: value.as_dict()
    if issubclass(kind, Mapping):  # dicts, SharedKeys, accounts' verdicts
        return _mapping
    if issubclass(kind, list | tuple):
        return _sequence
    return _same


_CONVERTERS: dict[type, Callable[[Any], Any]] = {str: _same, int: _same, float: _same, bool: _same,
                                                 type(None): _same, list: _sequence, dict: _mapping}


def account_from_jsonable(data: dict[str, Any]) -> Account:
    """Inverse of ``to_jsonable`` for accounts stored in history snapshots."""
    values = dict(data)
    for name in ("created_at", "expires_at", "last_activity_at", "password_last_set_at", "invitation_pending_since",
                 "disabled_at"):
        if values.get(name) is not None:
            values[name] = from_iso8601(values[name])
    values["kind"] = AccountKind(values.get("kind", "unknown"))
    values["activity_lag"] = timedelta(seconds=values.get("activity_lag") or 0)
    values.setdefault("enabled", None)
    known = {f.name for f in dataclasses.fields(Account)}
    return Account(**{k: v for k, v in values.items() if k in known})
