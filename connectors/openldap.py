"""OpenLDAP (and plain LDAP) objects to inventory: ppolicy lock state, lastbind, ppolicy policies.

Facts from REFERENCE.md 1.9: ``pwdAccountLockedTime`` of ``000001010000Z`` is a permanent lock;
``authTimestamp`` (lastbind overlay) or ``pwdLastSuccess`` (2.5 core) record logons; a user's policy is
its ``pwdPolicySubentry`` or the overlay's default, which only the server config knows.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.timeconv import OPENLDAP_PERMANENT_LOCK, from_generalized_time, from_unix
from connectors.activedirectory import DirectoryInventory, rdn_value
from connectors.ldif_format import DirectoryEntry

_USER_CLASSES = {"inetorgperson", "posixaccount", "person", "organizationalperson", "account"}
_GROUP_CLASSES = {"groupofnames", "groupofuniquenames", "posixgroup"}
NOLOGIN_SHELLS = {"/sbin/nologin", "/usr/sbin/nologin", "/bin/false", "/usr/bin/false"}


@dataclass
class OpenLdapOptions:
    default_policy_dn: str | None = None
    privileged_groups: Sequence[str] = ()
    service_account_patterns: Sequence[str] = ("svc*", "svc-*", "svc_*")


def _time(entry: DirectoryEntry, name: str, problems: list[str]) -> datetime | None:
    if entry.text(name) == OPENLDAP_PERMANENT_LOCK:  # a lock state, not a time
        return None
    return entry.moment(name, from_generalized_time, problems)


def policy_from_entry(source: str, entry: DirectoryEntry) -> PasswordPolicy:
    quality = entry.integer("pwdCheckQuality") or 0
    max_age = entry.integer("pwdMaxAge") or 0
    min_age = entry.integer("pwdMinAge") or 0
    lockout = (entry.text("pwdLockout") or "").upper() == "TRUE"
    return PasswordPolicy(
        source=source, id=entry.dn.lower(), name=f"ppolicy {rdn_value(entry.dn)}",
        # pwdMinLength is enforced only when pwdCheckQuality > 0 (slapo-ppolicy(5)).
        min_length=(entry.integer("pwdMinLength") or 0) if quality > 0 else 0,
        history_length=entry.integer("pwdInHistory") or 0,
        max_age=timedelta(seconds=max_age) if max_age > 0 else None,
        min_age=timedelta(seconds=min_age) if min_age > 0 else None,
        lockout_threshold=(entry.integer("pwdMaxFailure") or 0) if lockout else 0,
        raw={k: v for k in ("pwdCheckQuality", "pwdMinLength", "pwdMaxAge", "pwdInHistory", "pwdLockout",
                            "pwdMaxFailure", "pwdCheckModule") if (v := entry.text(k) or "")},
    )


def map_openldap(source: str, entries: Sequence[DirectoryEntry], options: OpenLdapOptions) -> DirectoryInventory:
    result = DirectoryInventory()
    problems: list[str] = []
    policies = {e.dn.lower(): policy_from_entry(source, e) for e in entries if "pwdpolicy" in e.object_classes()}
    result.policies.extend(policies.values())
    members: dict[str, set[str]] = {}
    by_uid: dict[str, str] = {}
    users = [e for e in entries if e.object_classes() & _USER_CLASSES]
    for user in users:
        if uid := user.text("uid"):
            by_uid[uid.lower()] = user.dn.lower()
    for group in (e for e in entries if e.object_classes() & _GROUP_CLASSES):
        name = rdn_value(group.dn)
        for member in group.texts("member") + group.texts("uniqueMember"):
            members.setdefault(member.lower(), set()).add(name)
        for uid in group.texts("memberUid"):
            if uid.lower() in by_uid:
                members.setdefault(by_uid[uid.lower()], set()).add(name)
    privileged = {g.lower() for g in options.privileged_groups}
    has_logon_data = any(u.has("authTimestamp") or u.has("pwdLastSuccess") for u in users)
    for user in users:
        locked = user.text("pwdAccountLockedTime")
        shell = user.text("loginShell")
        disabled_by = None
        if locked == OPENLDAP_PERMANENT_LOCK:
            disabled_by = "pwdAccountLockedTime=000001010000Z (permanent lock)"
        elif (user.text("nsAccountLock") or "").upper() == "TRUE":
            disabled_by = "nsAccountLock=TRUE"
        elif shell in NOLOGIN_SHELLS:
            disabled_by = f"loginShell={shell}"
        activity = max(
            (t for t in (_time(user, "authTimestamp", problems), _time(user, "pwdLastSuccess", problems)) if t),
            default=None,
        )
        attribute = None
        if activity is not None:
            attribute = "authTimestamp" if _time(user, "authTimestamp", []) == activity else "pwdLastSuccess"
        username = user.text("uid") or rdn_value(user.dn)
        groups = sorted(members.get(user.dn.lower(), set()) | {rdn_value(g) for g in user.texts("memberOf")})
        evidence = [f"member of {g}" for g in groups if g.lower() in privileged]
        shadow_expire = user.integer("shadowExpire")
        # shadowExpire counts days since 1970-01-01; -1 or 0 mean "does not expire".
        expires = from_unix(shadow_expire * 86_400) if shadow_expire and shadow_expire > 0 else None
        policy_dn = (user.text("pwdPolicySubentry") or options.default_policy_dn or "").lower() or None
        raw = {"dn": user.dn}
        for name in ("pwdAccountLockedTime", "authTimestamp", "pwdLastSuccess", "pwdChangedTime", "loginShell"):
            if (text := user.text(name)) is not None:
                raw[name] = text
        if disabled_by:
            raw["disabled_by"] = disabled_by
        kind = AccountKind.SERVICE if any(
            fnmatch.fnmatchcase(username.lower(), p.lower()) for p in options.service_account_patterns
        ) else AccountKind.HUMAN
        account = Account(
            source=source, id=(user.text("entryUUID") or user.dn).lower(), username=username,
            email=user.text("mail"), display_name=user.text("displayName") or user.text("cn"),
            kind=kind, enabled=disabled_by is None, created_at=_time(user, "createTimestamp", problems),
            expires_at=expires,
            activity_known=has_logon_data,
            activity_unknown_reason=None if has_logon_data else (
                "no authTimestamp (lastbind overlay) or pwdLastSuccess values: logons are not recorded"),
            last_activity_at=activity, last_activity_attribute=attribute,
            last_activity_raw=user.text(attribute) if attribute else None,
            password_last_set_at=_time(user, "pwdChangedTime", problems),
            password_never_expires=None if policy_dn is None or policy_dn not in policies
            else policies[policy_dn].max_age is None,
            privileged=bool(evidence), privilege_evidence=evidence, groups=groups,
            password_policy_id=policy_dn,
            identifiers={k: v for k, v in (("employee_id", user.text("employeeNumber")),) if v},
            raw=raw,
        )
        result.accounts.append(account)
        if account.created_at:
            result.change_events.append(ChangeEvent(
                source=source, at=account.created_at, account_id=account.id, username=username,
                action=ChangeAction.CREATED, detail="createTimestamp",
            ))
    for missing in sorted({a.password_policy_id for a in result.accounts if a.password_policy_id} - set(policies)):
        result.policies.append(PasswordPolicy(
            source=source, id=missing, name=f"ppolicy {rdn_value(missing)}", settings_known=False,
            unknown_reason="policy entry not present in the data read",
        ))
    if problems:
        result.warnings.append(f"{len(problems)} unreadable time value(s); first: {problems[0]}")
    return result
