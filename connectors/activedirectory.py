"""Active Directory objects to inventory: userAccountControl, FILETIMEs, privilege, PSOs.

Works on ``DirectoryEntry`` objects from an LDIF export or a live search alike. The facts applied
here are listed in REFERENCE.md section 1 (UAC bits, "never" sentinels, lastLogonTimestamp lag,
resultant PSO precedence, well-known RIDs).
"""

from __future__ import annotations

import base64
import fnmatch
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.timeconv import TimeFormatError, from_ad_duration, from_filetime, from_generalized_time
from connectors.ldif_format import DirectoryEntry

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


def sid_to_string(data: bytes) -> str:
    """Binary SID (MS-DTYP 2.4.2.2) to ``S-1-...`` text. Accepts text SIDs unchanged."""
    if data.startswith(b"S-1-"):
        return data.decode("ascii")
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


def rdn_value(dn: str) -> str:
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def _filetime(entry: DirectoryEntry, name: str, problems: list[str]) -> datetime | None:
    return entry.moment(name, from_filetime, problems)


def _generalized(entry: DirectoryEntry, name: str, problems: list[str]) -> datetime | None:
    return entry.moment(name, from_generalized_time, problems)


def _duration(entry: DirectoryEntry, name: str) -> tuple[bool, timedelta | None]:
    """(present, value); a zero max age means "never" in AD (MS-SAMR 3.1.5.14.4)."""
    text = entry.text(name)
    if text is None:
        return False, None
    try:
        value = from_ad_duration(text)
    except TimeFormatError:
        return False, None
    return True, (None if value == timedelta(0) else value)


def decode_uac_flags(value: int) -> list[str]:
    return [name for bit, name in UAC_FLAG_NAMES.items() if value & bit]


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


def is_active_directory(entries: Iterable[DirectoryEntry]) -> bool:
    for entry in entries:
        classes = entry.object_classes()
        if "domaindns" in classes or entry.has("userAccountControl") or entry.has("sAMAccountName"):
            return True
    return False


def domain_policy_from_entry(source: str, entry: DirectoryEntry) -> PasswordPolicy:
    props = entry.integer("pwdProperties") or 0
    _, max_age = _duration(entry, "maxPwdAge")
    _, min_age = _duration(entry, "minPwdAge")
    return PasswordPolicy(
        source=source, id=entry.dn.lower(), name=f"Default domain policy ({rdn_value(entry.dn)})",
        min_length=entry.integer("minPwdLength"),
        min_character_classes=3 if props & DOMAIN_PASSWORD_COMPLEX else 0,
        excludes_username=bool(props & DOMAIN_PASSWORD_COMPLEX),
        history_length=entry.integer("pwdHistoryLength"), max_age=max_age, min_age=min_age,
        lockout_threshold=entry.integer("lockoutThreshold"),
        reversible_encryption=bool(props & DOMAIN_PASSWORD_STORE_CLEARTEXT),
        applies_to=["all domain users without a fine-grained policy"],
        raw={k: v for k in ("minPwdLength", "pwdProperties", "maxPwdAge", "pwdHistoryLength", "lockoutThreshold")
             if (v := entry.text(k) or "")},
    )


def pso_from_entry(source: str, entry: DirectoryEntry) -> PasswordPolicy:
    _, max_age = _duration(entry, "msDS-MaximumPasswordAge")
    _, min_age = _duration(entry, "msDS-MinimumPasswordAge")
    complex_ = (entry.text("msDS-PasswordComplexityEnabled") or "").upper() == "TRUE"
    return PasswordPolicy(
        source=source, id=entry.dn.lower(), name=f"Fine-grained policy {rdn_value(entry.dn)}",
        min_length=entry.integer("msDS-MinimumPasswordLength"),
        min_character_classes=3 if complex_ else 0, excludes_username=complex_,
        history_length=entry.integer("msDS-PasswordHistoryLength"), max_age=max_age, min_age=min_age,
        lockout_threshold=entry.integer("msDS-LockoutThreshold"),
        reversible_encryption=(entry.text("msDS-PasswordReversibleEncryptionEnabled") or "").upper() == "TRUE",
        applies_to=entry.texts("msDS-PSOAppliesTo"),
        precedence=entry.integer("msDS-PasswordSettingsPrecedence"),
        raw={"objectGUID": guid_to_string(entry.first("objectGUID") or b"")} if entry.has("objectGUID") else {},
    )


class _Groups:
    """Group graph from the export: DN -> (SID, parent group DNs), for transitive membership."""

    def __init__(self, entries: Sequence[DirectoryEntry]) -> None:
        self.sid: dict[str, str] = {}
        self.parents: dict[str, set[str]] = {}
        for entry in entries:
            key = entry.dn.lower()
            if entry.first("objectSid") is not None:
                try:
                    self.sid[key] = sid_to_string(entry.first("objectSid") or b"")
                except ValueError:
                    pass
            self.parents.setdefault(key, set()).update(v.lower() for v in entry.texts("memberOf"))
            for member in entry.texts("member"):
                self.parents.setdefault(member.lower(), set()).add(key)

    def closure(self, direct: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = [d.lower() for d in direct]
        while stack:
            dn = stack.pop()
            if dn in seen:
                continue
            seen.add(dn)
            stack.extend(self.parents.get(dn, ()))
        return seen


def _privileged_group_label(dn: str, sid: str | None, extra: set[str]) -> str | None:
    if sid:
        if sid in PRIVILEGED_BUILTIN_SIDS:
            return PRIVILEGED_BUILTIN_SIDS[sid]
        rid = int(sid.rsplit("-", 1)[1])
        if sid.startswith("S-1-5-21-") and rid in PRIVILEGED_DOMAIN_RIDS:
            return PRIVILEGED_DOMAIN_RIDS[rid]
    name = rdn_value(dn).lower()
    if name in _PRIVILEGED_NAMES and sid is None:  # no SID in the export: fall back to the name
        return rdn_value(dn)
    if name in extra or dn in extra:
        return rdn_value(dn)
    return None


def _resultant_pso(
    entry: DirectoryEntry, groups: set[str], psos: Sequence[tuple[PasswordPolicy, str]],
) -> str | None:
    """MS-ADTS 3.1.1.4.5.36 for exports without msDS-ResultantPSO: direct links beat group links;
    then lowest precedence; ties go to the smallest objectGUID."""
    dn = entry.dn.lower()
    direct = [(p, g) for p, g in psos if dn in {a.lower() for a in p.applies_to}]
    via_group = [(p, g) for p, g in psos if groups & {a.lower() for a in p.applies_to}]
    candidates = direct or via_group
    if not candidates:
        return None
    best = min(candidates, key=lambda pg: (pg[0].precedence if pg[0].precedence is not None else 2**31, pg[1]))
    return best[0].id


def map_active_directory(
    source: str, entries: Sequence[DirectoryEntry], options: AdOptions | None = None,
) -> DirectoryInventory:
    options = options or AdOptions()
    result = DirectoryInventory()
    problems: list[str] = []
    domain_entry = next((e for e in entries if "domaindns" in e.object_classes()), None)
    domain_policy = domain_policy_from_entry(source, domain_entry) if domain_entry else None
    if domain_policy:
        result.policies.append(domain_policy)
    pso_entries = [e for e in entries if "msds-passwordsettings" in e.object_classes()]
    psos = [(pso_from_entry(source, e), guid_to_string(e.first("objectGUID") or b"")) for e in pso_entries]
    result.policies.extend(p for p, _ in psos)
    domain_sid = None
    if domain_entry and domain_entry.first("objectSid"):
        try:
            domain_sid = sid_to_string(domain_entry.first("objectSid") or b"")
        except ValueError:
            pass
    group_graph = _Groups([e for e in entries if "group" in e.object_classes()])
    extra_priv = {g.lower() for g in options.extra_privileged_groups}
    account_entries = [
        e for e in entries
        if e.object_classes() & {"user", "computer", "msds-managedserviceaccount", "msds-groupmanagedserviceaccount"}
        and "isdeleted" not in e.attributes
    ]
    # An export taken without the logon attributes says nothing about activity; never read it as "never".
    has_logon_data = any(e.has("lastLogonTimestamp") or e.has("lastLogon") for e in account_entries)
    for entry in account_entries:
        account = _map_account(source, entry, problems, options, has_logon_data)
        direct_groups = entry.texts("memberOf")
        primary = entry.integer("primaryGroupID")
        all_groups = group_graph.closure(direct_groups)
        account.groups = sorted({rdn_value(g) for g in direct_groups})
        sids_by_dn = group_graph.sid
        for group_dn in sorted(all_groups):
            label = _privileged_group_label(group_dn, sids_by_dn.get(group_dn), extra_priv)
            if label:
                how = "member" if group_dn in {g.lower() for g in direct_groups} else "nested member"
                account.privilege_evidence.append(f"{how} of {label}")
        if primary is not None and domain_sid and primary in PRIVILEGED_DOMAIN_RIDS:
            account.privilege_evidence.append(f"primary group {PRIVILEGED_DOMAIN_RIDS[primary]}")
        account.privileged = bool(account.privilege_evidence)
        if (entry.integer("adminCount") or 0) == 1:
            # SDProp never clears adminCount: it is evidence of past privilege, not proof of current.
            account.privilege_evidence.append("adminCount=1")
        account.password_policy_id = _policy_for(entry, account, all_groups, psos, domain_policy)
        result.accounts.append(account)
        if account.created_at is not None:
            result.change_events.append(ChangeEvent(
                source=source, at=account.created_at, account_id=account.id, username=account.username,
                action=ChangeAction.CREATED, detail="whenCreated",
            ))
    for entry in entries:
        if (entry.text("isDeleted") or "").upper() == "TRUE" and entry.has("whenChanged"):
            when = _generalized(entry, "whenChanged", problems)
            if when:
                # Tombstone RDNs are mangled to "name\\0ADEL:<guid>".
                name = entry.text("sAMAccountName") or rdn_value(entry.dn).split("\\0ADEL", 1)[0]
                result.change_events.append(ChangeEvent(
                    source=source, at=when, account_id=guid_to_string(entry.first("objectGUID") or b"") or entry.dn,
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
    if problems:
        result.warnings.append(f"{len(problems)} unreadable time value(s); first: {problems[0]}")
    return result


def _policy_for(
    entry: DirectoryEntry, account: Account, groups: set[str],
    psos: Sequence[tuple[PasswordPolicy, str]], domain_policy: PasswordPolicy | None,
) -> str | None:
    if account.kind == AccountKind.MACHINE:
        return None  # machine passwords are generated; no user-chosen password to rate
    resultant = entry.text("msDS-ResultantPSO")
    if resultant:
        return resultant.lower()
    computed = _resultant_pso(entry, groups, psos)
    if computed:
        return computed
    return domain_policy.id if domain_policy else None


def _map_account(
    source: str, entry: DirectoryEntry, problems: list[str], options: AdOptions, has_logon_data: bool,
) -> Account:
    classes = entry.object_classes()
    uac = entry.integer("userAccountControl") or 0
    computed = entry.integer("msDS-User-Account-Control-Computed") or 0
    username = entry.text("sAMAccountName") or rdn_value(entry.dn)
    guid = entry.first("objectGUID")
    account_id = guid_to_string(guid) if guid else entry.dn.lower()
    if classes & {"msds-managedserviceaccount", "msds-groupmanagedserviceaccount"}:
        kind = AccountKind.SERVICE
    elif "computer" in classes or uac & (UF_WORKSTATION_TRUST_ACCOUNT | UF_SERVER_TRUST_ACCOUNT):
        kind = AccountKind.MACHINE
    elif uac & UF_INTERDOMAIN_TRUST_ACCOUNT:
        kind = AccountKind.MACHINE
    elif entry.has("servicePrincipalName") or any(
        fnmatch.fnmatchcase(username.lower(), p.lower()) for p in options.service_account_patterns
    ):
        kind = AccountKind.SERVICE
    else:
        kind = AccountKind.HUMAN
    llt = _filetime(entry, "lastLogonTimestamp", problems)
    last_logon = _filetime(entry, "lastLogon", problems)
    activity: datetime | None
    if last_logon and (llt is None or last_logon > llt):
        activity, attribute, raw_value, lag = last_logon, "lastLogon", entry.text("lastLogon"), timedelta(0)
    else:
        activity, attribute = llt, "lastLogonTimestamp"
        raw_value, lag = entry.text("lastLogonTimestamp"), LAST_LOGON_TIMESTAMP_LAG
    raw: dict[str, str] = {"dn": entry.dn, "userAccountControl": str(uac)}
    if uac:
        raw["userAccountControl_flags"] = "|".join(decode_uac_flags(uac))
    for name in ("lastLogonTimestamp", "lastLogon", "pwdLastSet", "accountExpires", "whenCreated"):
        if (text := entry.text(name)) is not None:
            raw[name] = text
    if computed & UF_LOCKOUT_COMPUTED:
        raw["locked_out"] = "true"
    identifiers: dict[str, str] = {}
    if entry.first("objectSid"):
        try:
            identifiers["sid"] = sid_to_string(entry.first("objectSid") or b"")
        except ValueError:
            problems.append(f"{entry.dn}: objectSid: malformed")
    if guid:  # Entra Connect's default source anchor: onPremisesImmutableId = base64(objectGUID)
        identifiers["immutable_id"] = base64.b64encode(guid).decode("ascii")
    if upn := entry.text("userPrincipalName"):
        identifiers["upn"] = upn
    if employee := entry.text("employeeID"):
        identifiers["employee_id"] = employee
    return Account(
        source=source, id=account_id, username=username,
        email=entry.text("mail") or entry.text("userPrincipalName"),
        display_name=entry.text("displayName") or entry.text("cn"),
        kind=kind, enabled=not uac & UF_ACCOUNTDISABLE,
        created_at=_generalized(entry, "whenCreated", problems),
        expires_at=_filetime(entry, "accountExpires", problems),
        activity_known=has_logon_data,
        activity_unknown_reason=None if has_logon_data else "export has no lastLogonTimestamp or lastLogon values",
        last_activity_at=activity if has_logon_data else None,
        last_activity_attribute=attribute, last_activity_raw=raw_value, activity_lag=lag,
        password_last_set_at=_filetime(entry, "pwdLastSet", problems),
        password_never_expires=bool(uac & UF_DONT_EXPIRE_PASSWD),
        password_not_required=bool(uac & UF_PASSWD_NOTREQD),
        reversible_password_encryption=bool(uac & UF_ENCRYPTED_TEXT_PWD_ALLOWED),
        identifiers=identifiers, raw=raw,
    )
