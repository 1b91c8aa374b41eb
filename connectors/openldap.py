"""OpenLDAP (and plain LDAP) objects to inventory: ppolicy lock state, lastbind, ppolicy policies.

Facts from slapo-ppolicy(5) and draft-behera-ldap-password-policy: ``pwdAccountLockedTime`` of
``000001010000Z`` is a permanent lock; ``authTimestamp`` (slapo-lastbind(5)) or ``pwdLastSuccess`` (2.5
core) record logons; a user's policy is its ``pwdPolicySubentry`` or the overlay's default, which only the
server config knows. An absent ppolicy setting has the schema's documented default (pwdMinLength 0, pwdMaxAge 0:
no expiry); a present but unreadable one is unknown.

Policy entries are policies, never accounts: the admin guide's example policy is ``objectClass: person`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.timeconv import OPENLDAP_PERMANENT_LOCK, from_generalized_time, from_unix
from connectors.activedirectory import DirectoryInventory, rdn_value
from connectors.dn import dn_key
from connectors.ldif_format import DirectoryEntry
from connectors.values import ValueProblems, name_pattern

_USER_CLASSES = {"inetorgperson", "posixaccount", "person", "organizationalperson", "account"}
_GROUP_CLASSES = {"groupofnames", "groupofuniquenames", "posixgroup"}
NOLOGIN_SHELLS = {"/sbin/nologin", "/usr/sbin/nologin", "/bin/false", "/usr/bin/false"}


@dataclass
class OpenLdapOptions:
    default_policy_dn: str | None = None
    privileged_groups: Sequence[str] = ()
    service_account_patterns: Sequence[str] = ("svc*", "svc-*", "svc_*")


def _time(entry: DirectoryEntry, name: str, problems: ValueProblems, text: str | None = None) -> datetime | None:
    text = entry.text(name) if text is None else text
    if text is None or text == OPENLDAP_PERMANENT_LOCK:  # absent; or a lock state, not a time
        return None
    return problems.checked(lambda: from_generalized_time(text), entry.dn, name)


# Every attribute an account's mapping reads, decoded once per entry (the first value of each).
_ACCOUNT_TEXTS = tuple((name, name.lower()) for name in (
    "pwdAccountLockedTime", "loginShell", "nsAccountLock", "uid", "pwdPolicySubentry", "authTimestamp",
    "pwdLastSuccess", "pwdChangedTime", "createTimestamp", "entryUUID", "mail", "displayName", "cn",
    "employeeNumber"))


def _texts(entry: DirectoryEntry) -> dict[str, str]:
    attributes = entry.attributes
    return {name: values[0].decode("utf-8", "replace") for name, key in _ACCOUNT_TEXTS
            if (values := attributes.get(key))}


_PPOLICY_INTEGERS = {"min_length": "pwdMinLength", "quality": "pwdCheckQuality", "max_age": "pwdMaxAge",
                     "min_age": "pwdMinAge", "history_length": "pwdInHistory", "lockout_threshold": "pwdMaxFailure"}


def policy_from_entry(source: str, entry: DirectoryEntry, problems: ValueProblems) -> PasswordPolicy:
    values: dict[str, int] = {}
    unknown: list[str] = []
    for name, attribute in _PPOLICY_INTEGERS.items():
        value = entry.integer(attribute, problems)
        if value is None and entry.has(attribute):
            unknown.append(name)  # present but unreadable: not the schema default
        values[name] = value or 0
    lockout_text = (entry.text("pwdLockout") or "FALSE").strip().upper()
    if lockout_text not in ("TRUE", "FALSE"):
        problems.add(entry.dn, "pwdLockout", f"not TRUE or FALSE: {lockout_text[:40]!r}")
        unknown.append("lockout_threshold")
    policy = PasswordPolicy(
        source=source, id=dn_key(entry.dn), name=f"ppolicy {rdn_value(entry.dn)}",
        # pwdMinLength is enforced only when pwdCheckQuality > 0 (slapo-ppolicy(5)).
        min_length=values["min_length"] if values["quality"] > 0 else 0,
        history_length=values["history_length"],
        max_age=timedelta(seconds=values["max_age"]) if values["max_age"] > 0 else None,
        min_age=timedelta(seconds=values["min_age"]) if values["min_age"] > 0 else None,
        lockout_threshold=values["lockout_threshold"] if lockout_text == "TRUE" else 0,
        # pwdCheckQuality decides whether pwdMinLength applies: unreadable, the minimum length is unknown.
        unknown_settings=sorted({"min_length" if name == "quality" else name for name in unknown}),
        raw={k: v for k in ("pwdCheckQuality", "pwdMinLength", "pwdMaxAge", "pwdInHistory", "pwdLockout",
                            "pwdMaxFailure", "pwdCheckModule") if (v := entry.text(k) or "")},
    )
    if "min_length" in policy.unknown_settings:
        policy.settings_known = False
        policy.unknown_reason = "pwdMinLength or pwdCheckQuality unreadable"
    return policy


def map_openldap(source: str, entries: Sequence[DirectoryEntry], options: OpenLdapOptions) -> DirectoryInventory:
    result = DirectoryInventory()
    problems = ValueProblems()
    classes = [(e, e.object_classes()) for e in entries]  # once per entry: it decodes every objectClass value
    policies = {dn_key(e.dn): policy_from_entry(source, e, problems) for e, kinds in classes if "pwdpolicy" in kinds}
    result.policies.extend(policies.values())
    members: dict[str, set[str]] = {}
    by_uid: dict[str, str] = {}
    users = [e for e, kinds in classes if kinds & _USER_CLASSES and "pwdpolicy" not in kinds]
    for user in users:
        if uid := user.text("uid"):
            by_uid[uid.lower()] = dn_key(user.dn)
    for group in (e for e, kinds in classes if kinds & _GROUP_CLASSES):
        name = rdn_value(group.dn)
        for member in group.texts("member") + group.texts("uniqueMember"):
            members.setdefault(dn_key(member), set()).add(name)
        for uid in group.texts("memberUid"):
            if uid.lower() in by_uid:
                members.setdefault(by_uid[uid.lower()], set()).add(name)
    privileged = {g.lower() for g in options.privileged_groups}
    has_logon_data = any(u.has("authTimestamp") or u.has("pwdLastSuccess") for u in users)
    default_policy = dn_key(options.default_policy_dn) if options.default_policy_dn else None
    service = name_pattern(options.service_account_patterns)

    def add_account(user: DirectoryEntry) -> None:
        texts = _texts(user)
        locked = texts.get("pwdAccountLockedTime")
        shell = texts.get("loginShell")
        disabled_by = None
        if locked == OPENLDAP_PERMANENT_LOCK:
            disabled_by = "pwdAccountLockedTime=000001010000Z (permanent lock)"
        elif (texts.get("nsAccountLock") or "").upper() == "TRUE":
            disabled_by = "nsAccountLock=TRUE"
        elif shell in NOLOGIN_SHELLS:
            disabled_by = f"loginShell={shell}"
        before = len(problems)
        logons = {name: _time(user, name, problems, texts.get(name)) for name in ("authTimestamp", "pwdLastSuccess")}
        unreadable = len(problems) != before  # then the last use could be later than what was read
        read = {name: moment for name, moment in logons.items() if moment is not None}
        attribute = max(read, key=read.__getitem__) if read else None
        activity = read[attribute] if attribute else None
        username = texts.get("uid") or rdn_value(user.dn)
        groups = sorted(members.get(dn_key(user.dn), set()) | {rdn_value(g) for g in user.texts("memberOf")})
        evidence = [f"member of {g}" for g in groups if g.lower() in privileged]
        shadow_expire = user.integer("shadowExpire", problems)
        # shadowExpire counts days since 1970-01-01; -1 or 0 mean "does not expire".
        expires = None
        if shadow_expire is not None and shadow_expire > 0:
            expires = problems.checked(partial(from_unix, shadow_expire * 86_400), user.dn, "shadowExpire")
        subentry = texts.get("pwdPolicySubentry")
        policy_dn = dn_key(subentry) if subentry else default_policy
        raw = {"dn": user.dn}
        for name in ("pwdAccountLockedTime", "authTimestamp", "pwdLastSuccess", "pwdChangedTime", "loginShell"):
            if (text := texts.get(name)) is not None:
                raw[name] = text
        if disabled_by:
            raw["disabled_by"] = disabled_by
        kind = AccountKind.SERVICE if service and service.match(username.lower()) else AccountKind.HUMAN
        account = Account(
            source=source, id=(texts.get("entryUUID") or "").lower() or dn_key(user.dn), username=username,
            email=texts.get("mail"), display_name=texts.get("displayName") or texts.get("cn"),
            kind=kind, enabled=disabled_by is None,
            created_at=_time(user, "createTimestamp", problems, texts.get("createTimestamp")),
            expires_at=expires,
            activity_known=has_logon_data and not unreadable,
            activity_unknown_reason=None if has_logon_data and not unreadable else (
                "authTimestamp or pwdLastSuccess unreadable" if unreadable else
                "no authTimestamp (lastbind overlay) or pwdLastSuccess values: logons are not recorded"),
            last_activity_at=activity if not unreadable else None, last_activity_attribute=attribute,
            last_activity_raw=texts.get(attribute) if attribute else None,
            password_last_set_at=_time(user, "pwdChangedTime", problems, texts.get("pwdChangedTime")),
            password_never_expires=None if policy_dn is None or policy_dn not in policies
            else policies[policy_dn].max_age is None,
            privileged=bool(evidence), privilege_evidence=evidence, groups=groups,
            password_policy_id=policy_dn,
            identifiers={k: v for k, v in (("employee_id", texts.get("employeeNumber")),) if v},
            raw=raw,
        )
        result.accounts.append(account)
        if account.created_at:
            result.change_events.append(ChangeEvent(
                source=source, at=account.created_at, account_id=account.id, username=username,
                action=ChangeAction.CREATED, detail="createTimestamp",
            ))

    problems.map_each(users, add_account)
    for missing in sorted({a.password_policy_id for a in result.accounts if a.password_policy_id} - set(policies)):
        result.policies.append(PasswordPolicy(
            source=source, id=missing, name=f"ppolicy {rdn_value(missing)}", settings_known=False,
            unknown_reason="policy entry not present in the data read",
        ))
    result.warnings.extend(problems.warnings())
    result.partial_error = problems.partial_error()
    return result
