"""Links between sources that describe the same identity: one person, their accounts everywhere.

The authoritative directory's accounts (current ones, and removed ones history remembers) are the people.
Every other account is linked to a person by the configured keys, tried in order; the first key that
names exactly one person makes the link, and the link records the key. Accounts linked to nobody are
kept with the reason (no key value, no match, ambiguous): the unmanaged-account rule reads them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from auditor.config import IdentitySettings
from auditor.model import (
    Account,
    AccountLink,
    ChangeAction,
    ChangeEvent,
    DepartedAccount,
    Departure,
    IdentityGraph,
    Inventory,
    Person,
    UnlinkedAccount,
)
from auditor.timeconv import to_iso


def inherit_on_premises_policies(inventory: Inventory) -> int:
    """A cloud account synced from an audited directory is governed by its directory account's password
    policy (password hash sync keeps the on-premises rules). Linked by the directory's objectSid, which
    Entra ID keeps as onPremisesSecurityIdentifier. Returns how many accounts were linked."""
    # Those that could inherit first: an audit of one directory has none, and its million accounts' identifiers
    # (read back from their packed text at each look) are then not read twice more.
    synced = [(account, sid) for account in inventory.accounts if account.password_policy_id is None
              and (sid := account.identifiers.get("on_prem_sid"))]
    if not synced:
        return 0
    by_sid = {a.identifiers["sid"]: a for a in inventory.accounts if "sid" in a.identifiers}
    linked = 0
    for account, sid in synced:
        on_prem = by_sid.get(sid)
        if on_prem is None or on_prem.source == account.source:
            continue
        account.password_policy_id = on_prem.password_policy_id
        account.password_policy_source = on_prem.source
        linked += 1
    return linked


class EmailNormaliser:
    """Case-folded, plus-address tag removed, domain aliases mapped to the organisation's canonical domain."""

    def __init__(self, domain_aliases: Iterable[Iterable[str]]) -> None:
        self.canonical: dict[str, str] = {}
        for group in domain_aliases:
            domains = [d.strip().casefold() for d in group if d.strip()]
            for domain in domains:
                self.canonical[domain] = domains[0]

    def __call__(self, address: str) -> str | None:
        local, at, domain = address.strip().casefold().rpartition("@")
        if not at or not local or not domain:
            return None
        local = local.split("+", 1)[0]
        return f"{local}@{self.canonical.get(domain, domain)}" if local else None


def key_values(key: str, account: Account, email: EmailNormaliser) -> set[str]:
    """The normalised values of one correlation key that an account carries (often none)."""
    ids = account.identifiers
    if key == "sid":  # a directory's objectSid is Entra ID's onPremisesSecurityIdentifier
        return {v.upper() for v in (ids.get("sid"), ids.get("on_prem_sid")) if v}
    if key == "immutable_id":  # base64 of the directory's objectGUID (Entra Connect's source anchor)
        return {ids["immutable_id"]} if ids.get("immutable_id") else set()
    if key == "employee_id":
        value = ids.get("employee_id", "").strip().casefold()
        return {value} if value else set()
    if key == "email":
        candidates = [account.email, ids.get("upn"), *account.email_aliases]
        if "@" in account.username:
            candidates.append(account.username)
        return {n for n in (email(c) for c in candidates if c) if n}
    raise ValueError(f"unknown correlation key {key!r}")


def _departure(
    account: Account, departed: DepartedAccount | None, events: Mapping[str, list[ChangeEvent]], as_of: datetime,
    audit_times: list[datetime],
) -> Departure | None:
    mine = events.get(account.id, [])
    if departed is not None:
        if account.enabled is False:  # disabled first, removed later: the person left when it was disabled
            disabled = _disabled(account, mine, audit_times)
            if disabled.at is not None:
                return Departure("deleted", disabled.at, f"{disabled.evidence}; since removed", disabled.not_before)
        deleted = [e for e in mine if e.action == ChangeAction.DELETED and not e.approximate_time]
        if deleted:
            latest = max(deleted, key=lambda e: e.at)
            return Departure("deleted", latest.at, f"deletion recorded in the directory ({latest.detail})")
        return Departure("deleted", departed.missing_since,
                         f"absent from the directory since the audit as of {to_iso(departed.missing_since)}; "
                         f"last seen {account.state_at(departed.missing_since)}", departed.last_seen)
    if account.enabled is None or account.usable_at(as_of):
        return None  # an unknown directory state is not a departure: offboarding is not judged on it
    return _disabled(account, mine, audit_times)


def _disabled(account: Account, events: list[ChangeEvent], audit_times: list[datetime]) -> Departure:
    """When a disabled (or expired) directory account stopped being usable, as precisely as the data says."""
    if account.enabled and account.expires_at is not None:
        return Departure("disabled", account.expires_at, "account expiry date (accountExpires)")
    if account.disabled_at is not None:
        return Departure("disabled", account.disabled_at, "the directory's own status-change time")
    disabled = [e for e in events if e.action == ChangeAction.DISABLED]
    if disabled:
        latest = max(disabled, key=lambda e: e.at)
        if not latest.approximate_time:
            return Departure("disabled", latest.at, f"disable recorded by the {latest.origin} log")
        earlier = [t for t in audit_times if t < latest.at]
        return Departure("disabled", latest.at, "disable seen between two audits", earlier[-1] if earlier else None)
    return Departure("disabled", None, "disabled before the change log and history begin: date unknown")


class _Index:
    """Key value -> people, per key; each account's key values are worked out once."""

    def __init__(self, keys: tuple[str, ...], email: EmailNormaliser) -> None:
        self.keys, self.email = keys, email
        self.people: dict[str, dict[str, set[int]]] = {k: defaultdict(set) for k in keys}
        self._values: dict[tuple[str, str], dict[str, set[str]]] = {}

    def values(self, account: Account) -> dict[str, set[str]]:
        ref = (account.source, account.id)
        if ref not in self._values:
            self._values[ref] = {key: key_values(key, account, self.email) for key in self.keys}
        return self._values[ref]

    def add(self, account: Account, person: int) -> None:
        for key, values in self.values(account).items():
            for value in values:
                self.people[key][value].add(person)


def _prefer(candidates: set[int], people: list[Person]) -> int | None:
    """One person among candidates: a unique current, enabled directory account wins over disabled or removed
    ones (a rehire keeps the address of the old account)."""
    if len(candidates) == 1:
        return next(iter(candidates))
    for tier in (lambda p: p.departure is None, lambda p: p.departure is None or p.departure.how == "disabled"):
        best = [c for c in candidates if tier(people[c])]
        if len(best) == 1:
            return best[0]
    return None


def correlate(
    accounts: list[Account], settings: IdentitySettings, as_of: datetime,
    departed: Iterable[DepartedAccount] = (), departure_events: Iterable[ChangeEvent] = (),
    audit_times: Iterable[datetime] = (),
) -> IdentityGraph:
    """``audit_times``: as-of times of the authority's earlier audits, which bound changes seen between them."""
    email = EmailNormaliser(settings.domain_aliases)
    keys = tuple(settings.keys)
    authority = settings.authoritative_source
    events: dict[str, list[ChangeEvent]] = defaultdict(list)
    for event in departure_events:
        if event.source == authority:
            events[event.account_id].append(event)
    graph = IdentityGraph(authority, keys, service_accounts=tuple(settings.service_accounts))
    times = sorted(audit_times)
    index = _Index(keys, email)
    present = [a for a in accounts if a.source == authority]
    present_ids = {a.id for a in present}
    anchors = [(a, None) for a in present] + [(d.account, d) for d in departed if d.account.id not in present_ids]
    for account, gone in anchors:
        if account.automated or graph.declared_service(account):
            continue  # service accounts are nobody's identity
        person = Person(f"{authority}:{account.id}", account.display_name or account.username, account,
                        [AccountLink(account, "authoritative")], _departure(account, gone, events, as_of, times))
        index.add(account, len(graph.people))
        graph.people.append(person)

    pending = [a for a in accounts if a.source != authority]
    ambiguous: dict[tuple[str, str], str] = {}
    while pending:  # linked accounts bring their own key values: repeat until nothing new links
        still: list[Account] = []
        for account in pending:
            for key, values in index.values(account).items():
                candidates = set().union(*(index.people[key].get(v, set()) for v in values)) if values else set()
                if not candidates:
                    continue
                chosen = _prefer(candidates, graph.people)
                if chosen is None:
                    names = sorted(graph.people[c].authoritative.username for c in candidates)
                    ambiguous[(account.source, account.id)] = f"{key} matches {len(names)} people: {', '.join(names)}"
                    continue
                matched = sorted(v for v in values if chosen in index.people[key].get(v, set()))[0]
                graph.people[chosen].links.append(AccountLink(account, key, matched))
                index.add(account, chosen)
                ambiguous.pop((account.source, account.id), None)
                break
            else:
                still.append(account)
        if len(still) == len(pending):
            break
        pending = still

    for account in pending:
        reason = ambiguous.get((account.source, account.id))
        if reason:
            graph.unlinked.append(UnlinkedAccount(account, "ambiguous", reason))
        elif not any(index.values(account).values()):
            graph.unlinked.append(UnlinkedAccount(
                account, "no_key", f"the source gives none of the correlation keys ({', '.join(keys)})"))
        else:
            graph.unlinked.append(UnlinkedAccount(
                account, "no_match", f"no person in {authority} shares its {', '.join(keys)}"))
    return graph

