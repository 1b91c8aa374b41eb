"""Active Directory objects to inventory: userAccountControl, FILETIMEs, privilege, PSOs.

Works on ``DirectoryEntry`` objects from an LDIF export or a live search alike. Sources: userAccountControl
bits (Microsoft KB305144, MS-ADTS 2.2.16), FILETIME and its "never" sentinels (MS-ADA1 accountExpires,
lastLogon), the lastLogonTimestamp sync interval (MS-ADA1 2.352), resultant PSO precedence (MS-ADTS
3.1.1.4.5.36), well-known RIDs (MS-DTYP 2.4.2.4), pwdProperties (MS-SAMR 2.2.1.13 DOMAIN_PASSWORD_INFORMATION).

Absent is unknown: a global-catalog read (port 3268) or a reader denied the Domain-Password property set gets a
domain entry without minPwdLength, pwdProperties, maxPwdAge or lockoutThreshold, and no error (MS-ADTS 5.1.3:
unreadable attributes are returned as if they did not exist). Those settings are unknown, never zero.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import re
import struct
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.timeconv import TimeFormatError, from_ad_duration, from_filetime, from_generalized_time
from connectors.dn import dn_key, first_rdn_value
from connectors.ldif_format import DirectoryEntry
from connectors.values import ValueProblems, name_pattern

# userAccountControl bits (KB305144)
UF_ACCOUNTDISABLE = 0x2
UF_PASSWD_NOTREQD = 0x20
UF_ENCRYPTED_TEXT_PWD_ALLOWED = 0x80
UF_NORMAL_ACCOUNT = 0x200
UF_INTERDOMAIN_TRUST_ACCOUNT = 0x800
UF_WORKSTATION_TRUST_ACCOUNT = 0x1000
UF_SERVER_TRUST_ACCOUNT = 0x2000
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_SMARTCARD_REQUIRED = 0x40000
UF_LOCKOUT_COMPUTED = 0x10
UF_PASSWORD_EXPIRED_COMPUTED = 0x800000

UAC_FLAG_NAMES = {
    0x2: "ACCOUNTDISABLE", 0x20: "PASSWD_NOTREQD", 0x80: "ENCRYPTED_TEXT_PWD_ALLOWED",
    0x200: "NORMAL_ACCOUNT", 0x800: "INTERDOMAIN_TRUST_ACCOUNT", 0x1000: "WORKSTATION_TRUST_ACCOUNT",
    0x2000: "SERVER_TRUST_ACCOUNT", 0x10000: "DONT_EXPIRE_PASSWORD", 0x40000: "SMARTCARD_REQUIRED",
    0x80000: "TRUSTED_FOR_DELEGATION", 0x400000: "DONT_REQ_PREAUTH",
    0x1000000: "TRUSTED_TO_AUTH_FOR_DELEGATION",
}

# pwdProperties bits on the domain head
DOMAIN_PASSWORD_COMPLEX = 0x1
DOMAIN_PASSWORD_STORE_CLEARTEXT = 0x10

# lastLogonTimestamp is replicated only when older than the sync interval (14 days by default).
LAST_LOGON_TIMESTAMP_LAG = timedelta(days=14)

# Current membership of these makes an account privileged (domain RIDs and BUILTIN SIDs).
PRIVILEGED_DOMAIN_RIDS = {512: "Domain Admins", 518: "Schema Admins", 519: "Enterprise Admins"}
PRIVILEGED_BUILTIN_SIDS = {
    "S-1-5-32-544": "Administrators", "S-1-5-32-548": "Account Operators",
    "S-1-5-32-549": "Server Operators", "S-1-5-32-551": "Backup Operators",
}
_PRIVILEGED_NAMES = {n.lower() for n in (*PRIVILEGED_DOMAIN_RIDS.values(), *PRIVILEGED_BUILTIN_SIDS.values())}


_TEXT_SID = re.compile(r"S-1-[0-9]{1,15}(-[0-9]{1,10}){1,15}")


def sid_to_string(data: bytes) -> str:
    """Binary SID (MS-DTYP 2.4.2.2) to ``S-1-...`` text. Accepts well-formed text SIDs (MS-DTYP 2.4.2.1)."""
    if data.startswith(b"S-"):
        text = data.decode("ascii", "replace")
        if not _TEXT_SID.fullmatch(text):
            raise ValueError(f"not a SID: {text[:40]!r}")
        return text
    if len(data) < 8:
        raise ValueError("SID too short")
    revision, count = data[0], data[1]
    authority = int.from_bytes(data[2:8], "big")
    if len(data) < 8 + 4 * count:
        raise ValueError("SID truncated")
    subs = struct.unpack_from(f"<{count}I", data, 8)
    return f"S-{revision}-{authority}" + "".join(f"-{s}" for s in subs)


def guid_to_string(data: bytes) -> str:
    if len(data) == 16:
        return str(uuid.UUID(bytes_le=data))
    return data.decode("ascii", "replace").strip("{}").lower()


rdn_value = first_rdn_value  # the readable name of a group or policy, escapes decoded


def _filetime(entry: DirectoryEntry, name: str, problems: ValueProblems) -> datetime | None:
    return entry.moment(name, from_filetime, problems)


def _readable_filetime(entry: DirectoryEntry, name: str, problems: ValueProblems) -> tuple[bool, datetime | None]:
    """(readable, value): absent is readable (AD writes no logon time until the first logon), garbage is not."""
    before = len(problems)
    value = _filetime(entry, name, problems)
    return len(problems) == before, value


def _generalized(entry: DirectoryEntry, name: str, problems: ValueProblems) -> datetime | None:
    return entry.moment(name, from_generalized_time, problems)


def _duration(entry: DirectoryEntry, name: str, problems: ValueProblems) -> tuple[bool, timedelta | None]:
    """(known, value); a zero max age means "never" in AD (MS-SAMR 3.1.5.14.4). Absent or unreadable: unknown."""
    text = entry.text(name)
    if text is None:
        return False, None
    try:
        value = from_ad_duration(text)
    except (TimeFormatError, OverflowError) as exc:
        problems.add(entry.dn, name, str(exc))
        return False, None
    return True, (None if value == timedelta(0) else value)


def decode_uac_flags(value: int) -> list[str]:
    return [name for bit, name in UAC_FLAG_NAMES.items() if value & bit]


@functools.lru_cache(maxsize=1024)
def _uac_flags_text(value: int) -> str:
    return "|".join(decode_uac_flags(value))


@dataclass
class AdOptions:
    service_account_patterns: Sequence[str] = ("svc*", "svc_*", "svc-*", "sa-*", "*$svc")
    extra_privileged_groups: Sequence[str] = ()


@dataclass
class DirectoryInventory:
    accounts: list[Account] = field(default_factory=list)
    policies: list[PasswordPolicy] = field(default_factory=list)
    change_events: list[ChangeEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    partial_error: str | None = None  # records that could not be mapped at all: listed, the rest audited


def is_active_directory(entries: Iterable[DirectoryEntry]) -> bool:
    for entry in entries:
        classes = entry.object_classes()
        if "domaindns" in classes or entry.has("userAccountControl") or entry.has("sAMAccountName"):
            return True
    return False


# The rater needs these two; without either, strength is unknown (never "no minimum").
_RATED_SETTINGS = ("min_length", "complexity")
_HIDDEN_REASON = ("a global-catalog read (port 3268) or a reader denied the Domain-Password property set gets "
                  "the entry without them")


def _boolean(entry: DirectoryEntry, name: str, problems: ValueProblems) -> bool | None:
    """LDAP Boolean syntax (RFC 4517 3.3.3): TRUE or FALSE; anything else is unreadable."""
    text = entry.text(name)
    if text is None:
        return None
    if text.strip().upper() in ("TRUE", "FALSE"):
        return text.strip().upper() == "TRUE"
    problems.add(entry.dn, name, f"not TRUE or FALSE: {text[:40]!r}")
    return None


def _with_unknowns(policy: PasswordPolicy, unknown: dict[str, str], why: str) -> PasswordPolicy:
    """Record which settings (model name -> attribute) the entry did not give; rate only with the rated ones."""
    policy.unknown_settings = sorted(unknown)
    missing = sorted({unknown[name] for name in _RATED_SETTINGS if name in unknown})
    if missing:
        policy.settings_known = False
        policy.unknown_reason = f"{', '.join(missing)} absent or unreadable ({why})"
    return policy


def _settings(
    entry: DirectoryEntry, problems: ValueProblems, integers: dict[str, str], booleans: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Policy settings by model name, and the unknown ones (model name -> attribute). Durations are the
    ``*_age`` settings; ``integers`` and ``booleans`` name the rest."""
    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    for attribute in [*integers.values(), *booleans.values()]:
        if not entry.has(attribute):
            problems.missing(entry.dn, attribute, "password policy setting unknown")
    for name, attribute in integers.items():
        if name.endswith("_age"):
            known, values[name] = _duration(entry, attribute, problems)
        else:
            values[name] = entry.integer(attribute, problems)
            known = values[name] is not None
        if not known:
            unknown[name] = attribute
    for name, attribute in booleans.items():
        values[name] = _boolean(entry, attribute, problems)
        if values[name] is None:
            unknown[name] = attribute
    return values, unknown


def domain_policy_from_entry(source: str, entry: DirectoryEntry, problems: ValueProblems) -> PasswordPolicy:
    values, unknown = _settings(entry, problems, {
        "min_length": "minPwdLength", "properties": "pwdProperties", "max_age": "maxPwdAge",
        "min_age": "minPwdAge", "history_length": "pwdHistoryLength", "lockout_threshold": "lockoutThreshold",
    }, {})
    props = values["properties"]
    if "properties" in unknown:  # one attribute carries both settings
        unknown["complexity"] = unknown["reversible_encryption"] = unknown.pop("properties")
    complex_ = props is not None and bool(props & DOMAIN_PASSWORD_COMPLEX)
    policy = PasswordPolicy(
        source=source, id=dn_key(entry.dn), name=f"Default domain policy ({rdn_value(entry.dn)})",
        min_length=values["min_length"], min_character_classes=3 if complex_ else 0, excludes_username=complex_,
        history_length=values["history_length"], max_age=values["max_age"], min_age=values["min_age"],
        lockout_threshold=values["lockout_threshold"],
        reversible_encryption=None if props is None else bool(props & DOMAIN_PASSWORD_STORE_CLEARTEXT),
        applies_to=["all domain users without a fine-grained policy"],
        raw={k: v for k in ("minPwdLength", "pwdProperties", "maxPwdAge", "pwdHistoryLength", "lockoutThreshold")
             if (v := entry.text(k) or "")},
    )
    return _with_unknowns(policy, unknown, _HIDDEN_REASON)


def pso_from_entry(source: str, entry: DirectoryEntry, problems: ValueProblems) -> PasswordPolicy:
    values, unknown = _settings(entry, problems, {
        "min_length": "msDS-MinimumPasswordLength", "max_age": "msDS-MaximumPasswordAge",
        "min_age": "msDS-MinimumPasswordAge", "history_length": "msDS-PasswordHistoryLength",
        "lockout_threshold": "msDS-LockoutThreshold",
    }, {"complexity": "msDS-PasswordComplexityEnabled",
        "reversible_encryption": "msDS-PasswordReversibleEncryptionEnabled"})
    complex_ = bool(values["complexity"])
    policy = PasswordPolicy(
        source=source, id=dn_key(entry.dn), name=f"Fine-grained policy {rdn_value(entry.dn)}",
        min_length=values["min_length"], min_character_classes=3 if complex_ else 0, excludes_username=complex_,
        history_length=values["history_length"], max_age=values["max_age"], min_age=values["min_age"],
        lockout_threshold=values["lockout_threshold"], reversible_encryption=values["reversible_encryption"],
        applies_to=entry.texts("msDS-PSOAppliesTo"),
        precedence=entry.integer("msDS-PasswordSettingsPrecedence", problems),
        raw={"objectGUID": guid_to_string(entry.first("objectGUID") or b"")} if entry.has("objectGUID") else {},
    )
    return _with_unknowns(policy, unknown, "a reader without rights on the Password Settings Container sees "
                                           "PSOs without their settings")


class _Groups:
    """Group graph from the export: DN key -> (SID, parent group DN keys), for transitive membership. Built a
    group at a time as the export is read; the groups' entries are not kept. An account's own key has as parents
    the groups whose member lists name it."""

    def __init__(self) -> None:
        self.sid: dict[str, str] = {}
        self.parents: dict[str, set[str]] = {}
        self.dn: dict[str, str] = {}  # key -> the DN as the directory wrote it, for readable labels
        self._closures: dict[str, frozenset[str]] = {}

    def add(self, entry: DirectoryEntry, problems: ValueProblems) -> None:
        key = dn_key(entry.dn)
        self.dn[key] = entry.dn
        if entry.first("objectSid") is not None:
            try:
                self.sid[key] = sid_to_string(entry.first("objectSid") or b"")
            except ValueError:
                problems.add(entry.dn, "objectSid", "malformed SID; privilege by RID not decided for this group")
        self.parents.setdefault(key, set()).update(dn_key(v) for v in entry.texts("memberOf"))
        for member in entry.texts("member"):
            self.parents.setdefault(dn_key(member), set()).add(key)

    def extend(self, later: _Groups) -> None:
        """Join the graph of a later part of the same export."""
        self.sid.update(later.sid)
        self.dn.update(later.dn)
        for key, parents in later.parents.items():
            self.parents.setdefault(key, set()).update(parents)

    def closure(self, direct: Iterable[str]) -> set[str]:
        """Keys of every group reached from the groups whose DN keys are ``direct``: the union of each one's own
        closure, worked out once a group (a million accounts are members of the same few thousand groups). Only
        once the whole export is read: the graph must be complete."""
        reached: set[str] = set()
        for key in direct:
            known = self._closures.get(key)
            if known is None:
                known = self._closures[key] = frozenset(self._reach(key))
            reached |= known
        return reached

    def _reach(self, start: str) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:  # nesting can be circular: each group is visited once
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            stack.extend(self.parents.get(key, ()))
        return seen


def _privileged_group_label(dn: str, sid: str | None, extra: set[str]) -> str | None:
    """``extra``: configured group names (case-folded) and DN keys."""
    if sid and (by_sid := _sid_label(sid)):
        return by_sid
    label = rdn_value(dn)
    name = label.casefold()
    if name in _PRIVILEGED_NAMES and sid is None:  # no SID in the export: fall back to the name
        return label
    if name in extra or dn_key(dn) in extra:
        return label
    return None


@dataclass(frozen=True)
class _Pso:
    policy: PasswordPolicy
    guid: str
    applies_to: frozenset[str]  # DN keys of the accounts and groups it is linked to


def _sid_label(sid: str) -> str | None:
    """The privileged group a SID is (a well-known one, or a domain's by its RID), or None."""
    if sid in PRIVILEGED_BUILTIN_SIDS:
        return PRIVILEGED_BUILTIN_SIDS[sid]
    rid = int(sid.rsplit("-", 1)[1])
    if sid.startswith("S-1-5-21-") and rid in PRIVILEGED_DOMAIN_RIDS:
        return PRIVILEGED_DOMAIN_RIDS[rid]
    return None


def _never_privileged(sids: dict[str, str], extra: set[str]) -> frozenset[str]:
    """Keys of groups whose membership never makes an account privileged: a SID that is no privileged group's,
    with no groups configured as privileged (those match names too). An account in only these needs no look at
    each of its groups (some 8 an account in the bench's export, each looked up twice: a tenth of settling)."""
    if extra:
        return frozenset()
    plain: set[str] = set()
    for key, sid in sids.items():
        with contextlib.suppress(ValueError, IndexError):  # a SID that cannot be read is left to the full look
            if sid and _sid_label(sid) is None:
                plain.add(key)
    return frozenset(plain)


def _resultant_pso(account_key: str, groups: set[str], psos: Sequence[_Pso]) -> str | None:
    """MS-ADTS 3.1.1.4.5.36 for exports without msDS-ResultantPSO: direct links beat group links;
    then lowest precedence; ties go to the smallest objectGUID. ``account_key``: the account DN's key."""
    direct = [p for p in psos if account_key in p.applies_to]
    via_group = [p for p in psos if not groups.isdisjoint(p.applies_to)]
    candidates = direct or via_group
    if not candidates:
        return None
    best = min(candidates, key=lambda p: (p.policy.precedence if p.policy.precedence is not None else 2**31, p.guid))
    return best.policy.id


_ACCOUNT_CLASSES = {"user", "computer", "msds-managedserviceaccount", "msds-groupmanagedserviceaccount"}


@dataclass(slots=True)
class PendingAccount:
    """An account mapped from its own entry, waiting for what needs the whole export: its groups' closure
    (privilege, the PSO that applies). Holds the few values of the entry that needs, not the entry."""

    account: Account
    key: str  # the DN's comparison key
    member_of: tuple[str, ...]
    primary_group: int | None
    admin_count: int | None
    resultant_pso: str | None

    @property
    def dn(self) -> str:
        """How a failure while settling names the entry (``record_name``)."""
        return self.account.raw.get("dn") or self.key


class PendingAccounts:
    """The pending accounts of a scan as columns, a list each value, not an object an account: the accounts
    outlive them, and a million small objects (and DN texts) freed once the accounts were settled left as many
    holes among them that later objects of other sizes could not use (some 200 MB at a million accounts). The
    lists go whole. Rows are made as they are settled."""

    __slots__ = ("accounts", "admin_count", "keys", "member_of", "primary_group", "resultant_pso")

    def __init__(self) -> None:
        self.accounts: list[Account] = []
        self.keys: list[str] = []
        self.member_of: list[tuple[str, ...]] = []
        self.primary_group: list[int | None] = []
        self.admin_count: list[int | None] = []
        self.resultant_pso: list[str | None] = []

    def append(self, row: PendingAccount) -> None:
        self.accounts.append(row.account)
        self.keys.append(row.key)
        self.member_of.append(row.member_of)
        self.primary_group.append(row.primary_group)
        self.admin_count.append(row.admin_count)
        self.resultant_pso.append(row.resultant_pso)

    def extend(self, later: PendingAccounts) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(later, name))

    def __len__(self) -> int:
        return len(self.accounts)

    def __iter__(self) -> Iterator[PendingAccount]:
        for row in zip(self.accounts, self.keys, self.member_of, self.primary_group, self.admin_count,
                       self.resultant_pso, strict=True):
            yield PendingAccount(*row)


def map_active_directory(
    source: str, entries: Iterable[DirectoryEntry], options: AdOptions | None = None,
) -> DirectoryInventory:
    """One pass over ``entries`` (a stream: an export of a million accounts is never held whole). Each account
    is mapped from its own entry as it comes; the domain head, PSOs, groups and tombstones are kept, and what
    needs them all (group closure, privilege, the governing policy) is settled once the last entry is read."""
    scan = AdScan(source, options or AdOptions())
    for entry in entries:
        scan.add(entry)
    return scan.settle()


class AdScan:
    """What one pass over an export keeps until its end: each account mapped from its own entry, and the domain
    head, PSOs, group graph and tombstones that settling them needs. Parts of one export read apart (in other
    processes) are scanned apart and joined in file order (:meth:`extend`) before they are settled."""

    def __init__(self, source: str, options: AdOptions) -> None:
        self.source, self.options = source, options
        self.problems = ValueProblems()  # the export's own objects: domain head, PSOs (listed first)
        self.group_problems = ValueProblems()
        self.account_problems = ValueProblems()
        self.domain_entry: DirectoryEntry | None = None
        self.pso_entries: list[DirectoryEntry] = []
        self.group_graph = _Groups()
        self.deleted_entries: list[DirectoryEntry] = []
        self.pending = PendingAccounts()
        self.has_logon_data = False
        self._group_dns: dict[str, str] = {}  # one string a group DN, shared by every member's entry
        self._group_ids: dict[int, int] = {}  # one int a primary group id (513: one object, not one an account)
        self._service_names = name_pattern(options.service_account_patterns)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group_dns": {}, "_group_ids": {}}  # sent between processes without its caches

    def add(self, entry: DirectoryEntry) -> None:
        classes = entry.object_classes()
        if self.domain_entry is None and "domaindns" in classes:
            self.domain_entry = entry
        if "msds-passwordsettings" in classes:
            self.pso_entries.append(entry)
        if "group" in classes:
            self.group_graph.add(entry, self.group_problems)
        if "isdeleted" in entry.attributes:
            self.deleted_entries.append(entry)
        elif classes & _ACCOUNT_CLASSES:
            # An export taken without the logon attributes says nothing about activity; never read it as "never".
            self.has_logon_data = self.has_logon_data or entry.has("lastLogonTimestamp") or entry.has("lastLogon")
            # One entry that breaks the mapping is listed as unreadable; the others are audited.
            for row in self.account_problems.map_each((entry,), self._read_account):
                self.pending.append(row)

    def _read_account(self, entry: DirectoryEntry) -> PendingAccount:
        # Mapped as if the export had logon data; corrected when settled if no account has any.
        problems = self.account_problems
        account = _map_account(self.source, entry, problems, self._service_names, True)
        return PendingAccount(
            account, entry.key, tuple(self._group_dns.setdefault(g, g) for g in entry.texts("memberOf")),
            self._group_id(entry.integer("primaryGroupID", problems)), entry.integer("adminCount", problems),
            entry.text("msDS-ResultantPSO"))

    def _group_id(self, number: int | None) -> int | None:
        if number is None or len(self._group_ids) >= 4096:  # a few in a domain; never a cache without end
            return number
        return self._group_ids.setdefault(number, number)

    def extend(self, later: AdScan) -> None:
        """Join the scan of the part of the export that follows this one's: as if one pass had read both."""
        self.domain_entry = self.domain_entry or later.domain_entry
        self.pso_entries += later.pso_entries
        self.group_graph.extend(later.group_graph)
        self.group_problems.extend(later.group_problems)
        self.deleted_entries += later.deleted_entries
        self.pending.extend(later.pending)
        self.has_logon_data = self.has_logon_data or later.has_logon_data
        self.account_problems.extend(later.account_problems)

    def settle(self) -> DirectoryInventory:
        """Every account with its groups' closure, privilege and governing policy; the policies, deletions."""
        source, problems, group_graph = self.source, self.problems, self.group_graph
        result = DirectoryInventory()
        domain_entry = self.domain_entry
        domain_policy = domain_policy_from_entry(source, domain_entry, problems) if domain_entry else None
        if domain_policy:
            result.policies.append(domain_policy)
        psos = [_Pso(policy, guid_to_string(e.first("objectGUID") or b""), frozenset(map(dn_key, policy.applies_to)))
                for e in self.pso_entries for policy in (pso_from_entry(source, e, problems),)]
        result.policies.extend(p.policy for p in psos)
        domain_sid = None
        if domain_entry and domain_entry.first("objectSid"):
            try:
                domain_sid = sid_to_string(domain_entry.first("objectSid") or b"")
            except ValueError:
                pass
        problems.extend(self.group_problems)
        problems.extend(self.account_problems)
        extra_priv = {g.casefold() for g in self.options.extra_privileged_groups}
        extra_priv |= {dn_key(g) for g in self.options.extra_privileged_groups if "=" in g}
        has_logon_data = self.has_logon_data

        labels: dict[str, str | None] = {}  # group DN as written -> its privileged label, or None
        never_privileged = _never_privileged(group_graph.sid, extra_priv)

        def settle(item: PendingAccount) -> None:
            account = item.account
            if not has_logon_data:
                account.activity_known, account.last_activity_at = False, None
                account.activity_unknown_reason = "export has no lastLogonTimestamp or lastLogon values"
            direct_groups = {dn_key(g): g for g in item.member_of}
            # Groups whose member lists name the account count as much as its memberOf: an export taken without
            # memberOf (or with a partial one) still says who is in Domain Admins.
            for key in group_graph.parents.get(item.key, ()):
                direct_groups.setdefault(key, group_graph.dn.get(key, key))
            all_groups = group_graph.closure(direct_groups)
            account.groups = sorted({rdn_value(g) for g in direct_groups.values()})
            evidence: list[str] = []
            for key in () if all_groups <= never_privileged else sorted(all_groups):
                dn = direct_groups.get(key) or group_graph.dn.get(key, key)
                if (label := labels.get(dn, "")) == "":  # the same few thousand groups for every account
                    label = labels[dn] = _privileged_group_label(dn, group_graph.sid.get(key), extra_priv)
                if label:
                    how = "member" if key in direct_groups else "nested member"
                    evidence.append(f"{how} of {label}")
            primary = item.primary_group
            if primary is not None and domain_sid and primary in PRIVILEGED_DOMAIN_RIDS:
                evidence.append(f"primary group {PRIVILEGED_DOMAIN_RIDS[primary]}")
            account.privileged = bool(evidence)
            if item.admin_count == 1:
                # SDProp never clears adminCount: it is evidence of past privilege, not proof of current.
                evidence.append("adminCount=1")
            if evidence:  # else the shared empty list the account was made with
                account.privilege_evidence = evidence
            account.password_policy_id = _policy_for(item.key, item.resultant_pso, account, all_groups, psos,
                                                     domain_policy)
            result.accounts.append(account)
            if account.created_at is not None:
                result.change_events.append(ChangeEvent(
                    source=source, at=account.created_at, account_id=account.id, username=account.username,
                    action=ChangeAction.CREATED, detail="whenCreated",
                ))

        pending, self.pending = self.pending, PendingAccounts()
        problems.map_each(pending, settle)  # a failure is listed under the entry's DN
        del pending
        for entry in self.deleted_entries:
            if (entry.text("isDeleted") or "").upper() == "TRUE" and entry.has("whenChanged"):
                when = _generalized(entry, "whenChanged", problems)
                if when:
                    # Tombstone RDNs are mangled to "name\\0ADEL:<guid>" (an escaped line feed).
                    name = entry.text("sAMAccountName") or rdn_value(entry.dn).split("\nDEL:", 1)[0]
                    result.change_events.append(ChangeEvent(
                        source=source, at=when,
                        account_id=guid_to_string(entry.first("objectGUID") or b"") or entry.dn,
                        username=name, action=ChangeAction.DELETED, detail="tombstone whenChanged",
                    ))
        known_policies = {p.id for p in result.policies}
        for missing in sorted({a.password_policy_id for a in result.accounts if a.password_policy_id} - known_policies):
            # The account names a PSO whose settings the export does not carry: non-admin readers get an
            # empty Password Settings Container. Unknown strength, never "no policy".
            result.policies.append(PasswordPolicy(
                source=source, id=missing, name=f"Fine-grained policy {rdn_value(missing)}", settings_known=False,
                unknown_reason="policy settings not readable in this export (Password Settings Container "
                "is readable by Domain Admins only)",
            ))
        result.warnings.extend(problems.warnings())
        result.partial_error = problems.partial_error()
        return result


def _policy_for(
    account_key: str, resultant: str | None, account: Account, groups: set[str],
    psos: Sequence[_Pso], domain_policy: PasswordPolicy | None,
) -> str | None:
    if account.kind == AccountKind.MACHINE:
        return None  # machine passwords are generated; no user-chosen password to rate
    if resultant:
        return dn_key(resultant)
    computed = _resultant_pso(account_key, groups, psos)
    if computed:
        return computed
    return domain_policy.id if domain_policy else None


def _map_account(
    source: str, entry: DirectoryEntry, problems: ValueProblems, service_names: re.Pattern[str] | None,
    has_logon_data: bool,
) -> Account:
    classes = entry.object_classes()
    uac_value = entry.integer("userAccountControl", problems)
    if uac_value is None and not entry.has("userAccountControl"):
        problems.missing(entry.dn, "userAccountControl", "enabled state and password flags unknown")
    uac = uac_value or 0  # bit tests below; every flag read from it is None when it is unknown
    computed = entry.integer("msDS-User-Account-Control-Computed", problems) or 0
    username = entry.text("sAMAccountName") or rdn_value(entry.dn)
    guid = entry.first("objectGUID")
    account_id = guid_to_string(guid) if guid else dn_key(entry.dn)
    if classes & {"msds-managedserviceaccount", "msds-groupmanagedserviceaccount"}:
        kind = AccountKind.SERVICE
    elif "computer" in classes or uac & (UF_WORKSTATION_TRUST_ACCOUNT | UF_SERVER_TRUST_ACCOUNT):
        kind = AccountKind.MACHINE
    elif uac & UF_INTERDOMAIN_TRUST_ACCOUNT:
        kind = AccountKind.MACHINE
    elif entry.has("servicePrincipalName") or (service_names is not None and service_names.match(username.lower())):
        kind = AccountKind.SERVICE
    else:
        kind = AccountKind.HUMAN
    llt_readable, llt = _readable_filetime(entry, "lastLogonTimestamp", problems)
    last_logon_readable, last_logon = _readable_filetime(entry, "lastLogon", problems)
    # One unreadable logon time and the last use could be later than the other says: unknown, not "never".
    unreadable = [n for n, ok in (("lastLogonTimestamp", llt_readable), ("lastLogon", last_logon_readable)) if not ok]
    activity: datetime | None
    if last_logon and (llt is None or last_logon > llt):
        activity, attribute, lag = last_logon, "lastLogon", timedelta(0)
    else:
        activity, attribute, lag = llt, "lastLogonTimestamp", LAST_LOGON_TIMESTAMP_LAG
    raw: dict[str, str] = {"dn": entry.dn}
    # Values most accounts share (a few flag sets, the "never expires" sentinel) are one string each, not one an
    # account: at a million accounts that is some 200 MB.
    if (uac_text := entry.text("userAccountControl")) is not None:
        raw["userAccountControl"] = sys.intern(uac_text)
    if uac:
        raw["userAccountControl_flags"] = _uac_flags_text(uac)
    for name in ("lastLogonTimestamp", "lastLogon", "pwdLastSet", "accountExpires", "whenCreated"):
        if (text := entry.text(name)) is not None:
            raw[name] = sys.intern(text) if name == "accountExpires" else text
    raw_value = raw.get(attribute)
    if computed & UF_LOCKOUT_COMPUTED:
        raw["locked_out"] = "true"
    identifiers: dict[str, str] = {}
    if entry.first("objectSid"):
        try:
            identifiers["sid"] = sid_to_string(entry.first("objectSid") or b"")
        except ValueError:
            problems.add(entry.dn, "objectSid", "malformed SID; not used to link this account")
    if guid:  # Entra Connect's default source anchor: onPremisesImmutableId = base64(objectGUID)
        identifiers["immutable_id"] = base64.b64encode(guid).decode("ascii")
    upn = entry.text("userPrincipalName")
    mail = entry.text("mail")
    if mail == upn:  # often the same address: one string for both (a million accounts, some 80 MB)
        mail = upn
    if upn:
        identifiers["upn"] = upn
    if employee := entry.text("employeeID"):
        identifiers["employee_id"] = employee
    return Account(
        source=source, id=account_id, username=username,
        email=mail or upn,
        display_name=entry.text("displayName") or entry.text("cn"),
        kind=kind, enabled=_flag(uac_value, UF_ACCOUNTDISABLE, invert=True),
        created_at=_generalized(entry, "whenCreated", problems),
        expires_at=_filetime(entry, "accountExpires", problems),
        activity_known=has_logon_data and not unreadable,
        activity_unknown_reason=(f"{' and '.join(unreadable)} unreadable" if unreadable else None)
        if has_logon_data else "export has no lastLogonTimestamp or lastLogon values",
        last_activity_at=activity if has_logon_data and not unreadable else None,
        last_activity_attribute=attribute, last_activity_raw=raw_value, activity_lag=lag,
        manager=f"dn:{manager}" if (manager := entry.text("manager")) else None,
        password_last_set_at=_filetime(entry, "pwdLastSet", problems),
        password_never_expires=_flag(uac_value, UF_DONT_EXPIRE_PASSWD),
        password_not_required=_flag(uac_value, UF_PASSWD_NOTREQD),
        reversible_password_encryption=_flag(uac_value, UF_ENCRYPTED_TEXT_PWD_ALLOWED),
        identifiers=identifiers, raw=raw,
    )


def _flag(uac: int | None, bit: int, *, invert: bool = False) -> bool | None:
    """A userAccountControl bit; None when the attribute is absent or unreadable."""
    if uac is None:
        return None
    return not uac & bit if invert else bool(uac & bit)
