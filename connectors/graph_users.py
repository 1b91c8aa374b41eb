"""Microsoft Graph objects to inventory: ``/users`` entries and ``directoryAudits`` records.

Shared by the offline ``graph-json`` source and the live Entra connector. Sources: Microsoft Graph v1.0 user
resource (properties returned only on ``$select``), signInActivity resource type, directoryAudit resource type
and the Entra audit activity reference, userRegistrationDetails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from connectors.values import ValueProblems

# signInActivity can take up to 24 hours to reflect a sign-in.
SIGN_IN_ACTIVITY_LAG = timedelta(hours=24)
CLOUD_POLICY_ID = "entra-cloud-password-policy"
WEAK_CLOUD_POLICY_ID = "entra-cloud-password-policy-disablestrongpassword"

# Exact activity names from the Entra audit activity reference; there is no "Reset user password".
AUDIT_ACTIONS: dict[str, ChangeAction] = {
    "Add user": ChangeAction.CREATED,
    "Restore user": ChangeAction.CREATED,
    "Delete user": ChangeAction.DELETED,
    "Hard Delete user": ChangeAction.DELETED,
    "Disable account": ChangeAction.DISABLED,
    "Enable account": ChangeAction.ENABLED,
    "Reset password": ChangeAction.PASSWORD_RESET,
    "Change user password": ChangeAction.PASSWORD_RESET,
    "Set force change user password": ChangeAction.PASSWORD_RESET,
    "Reset password (by admin)": ChangeAction.PASSWORD_RESET,
    "Reset password (self-service)": ChangeAction.PASSWORD_RESET,
    "Change password (self-service)": ChangeAction.PASSWORD_RESET,
    "Update user": ChangeAction.MODIFIED,
    "Change user license": ChangeAction.MODIFIED,
    "Add member to group": ChangeAction.GROUP_CHANGED,
    "Remove member from group": ChangeAction.GROUP_CHANGED,
}


def cloud_password_policies(source: str) -> list[PasswordPolicy]:
    """The fixed Entra cloud policy, and the relaxed one users with DisableStrongPassword get."""
    return [
        PasswordPolicy(
            source=source, id=CLOUD_POLICY_ID, name="Entra ID cloud password policy",
            min_length=8, min_character_classes=3, banned_list=True, max_age=None, lockout_threshold=10,
            applies_to=["cloud-only users"],
            raw={"rule": "8-256 characters, 3 of 4 classes, global banned-password list"},
        ),
        PasswordPolicy(
            # An inference: Microsoft documents only "allows weaker passwords"; complexity is what it drops.
            source=source, id=WEAK_CLOUD_POLICY_ID, name="Entra ID cloud policy with DisableStrongPassword",
            min_length=8, min_character_classes=0, banned_list=True, max_age=None, lockout_threshold=10,
            applies_to=["users whose passwordPolicies include DisableStrongPassword"],
            raw={"passwordPolicies": "DisableStrongPassword"},
        ),
    ]


def mfa_registrations(records: Iterable[Any], problems: ValueProblems) -> dict[str, bool]:
    """userRegistrationDetails: id -> isMfaRegistered. A record without a readable value says nothing."""
    registered: dict[str, bool] = {}
    for record in records:
        if not isinstance(record, Mapping):
            problems.add("userRegistrationDetails", "value[]", f"not an object: {type(record).__name__}")
            continue
        user_id = problems.text(record.get("id"), "userRegistrationDetails", "id")
        value = problems.boolean(record.get("isMfaRegistered"), user_id, "isMfaRegistered")
        if user_id and value is not None:
            registered[user_id] = value
    return registered


def _sign_in(
    user: Mapping[str, Any], record: str, problems: ValueProblems,
) -> tuple[bool, datetime | None, str | None, Any]:
    """(readable, last sign-in, attribute, raw value) from signInActivity.

    Absent while selected, or unreadable: not readable (unknown). ``null``, or an object whose times are all
    null: readable, never signed in. Before Dec 2023 only attempt times exist (successful or not): then the
    latest of the interactive and non-interactive attempt is the best left.
    """
    if "signInActivity" not in user:
        problems.missing(record, "signInActivity", "activity unknown")
        return False, None, None, None
    activity = user["signInActivity"]
    if activity is None:
        return True, None, None, None
    before = len(problems)
    fields = problems.mapping(activity, record, "signInActivity") or {}
    times = {name: problems.moment(fields.get(name), record, f"signInActivity.{name}", dotnet_min_is_never=True)
             for name in ("lastSuccessfulSignInDateTime", "lastSignInDateTime", "lastNonInteractiveSignInDateTime")}
    if len(problems) != before:
        return False, None, None, None
    if times["lastSuccessfulSignInDateTime"] is not None:
        chosen = "lastSuccessfulSignInDateTime"
    else:
        attempts = {n: t for n, t in times.items() if t is not None}
        chosen = max(attempts, key=attempts.__getitem__) if attempts else ""
    if not chosen:
        return True, None, None, None
    return True, times[chosen], f"signInActivity.{chosen}", fields.get(chosen)


def licences(user: Mapping[str, Any], record: str, sku_names: Mapping[str, str],
             problems: ValueProblems) -> tuple[str, ...] | None:
    """``assignedLicenses`` as SKU names (skuPartNumber from ``/subscribedSkus``; the skuId when the list does
    not name it). Not selected, null or unreadable: unknown (None), never "no licence"."""
    if "assignedLicenses" not in user:
        return None
    value = user["assignedLicenses"]
    if value is None:
        problems.missing(record, "assignedLicenses", "licences unknown")
        return None
    if not isinstance(value, list):
        problems.add(record, "assignedLicenses", f"expected a list, got {type(value).__name__}")
        return None
    held = []
    for item in value:
        sku = problems.text(item.get("skuId") if isinstance(item, Mapping) else item, record, "assignedLicenses.skuId")
        if sku is None:
            return None  # one unreadable licence makes the set unknown, not smaller
        held.append(sku_names.get(sku.lower(), sku))
    return tuple(sorted(held))


def manager_of(user: Mapping[str, Any], record: str, problems: ValueProblems) -> str | None:
    """``$expand=manager``: the manager's object id (a user or an orgContact); absent when there is none."""
    manager = problems.mapping(user.get("manager"), record, "manager")
    manager_id = problems.text(manager.get("id"), record, "manager.id") if manager else None
    return f"id:{manager_id}" if manager_id else None


def sku_names(skus: Iterable[Any], problems: ValueProblems) -> dict[str, str]:
    """skuId (lower case) -> skuPartNumber, from ``GET /subscribedSkus`` items."""
    names = {}
    for sku in skus:
        if not isinstance(sku, Mapping):
            continue
        sku_id = problems.text(sku.get("skuId"), "subscribedSkus", "skuId")
        part = problems.text(sku.get("skuPartNumber"), sku_id or "subscribedSkus", "skuPartNumber")
        if sku_id and part:
            names[sku_id.lower()] = part
    return names


def map_user(
    source: str, user: Mapping[str, Any], *, sign_in_known: bool, unknown_reason: str | None,
    mfa: Mapping[str, bool], problems: ValueProblems, sku_names: Mapping[str, str] | None = None,
) -> Account:
    """One ``/users`` object. Properties outside Graph's default set come only when ``$select``-ed, so a missing
    key means "not selected": unknown, never false (Graph docs, user resource and query parameters)."""
    user_id = problems.text(user.get("id"), "user", "id") or ""
    upn = problems.text(user.get("userPrincipalName"), user_id, "userPrincipalName") or user_id
    record = upn or "user without id"
    readable, last, attribute, raw_activity = _sign_in(user, record, problems) if sign_in_known else (
        False, None, None, None)
    if user.get("accountEnabled") is None:
        problems.missing(record, "accountEnabled", "enabled state unknown")
    enabled = problems.boolean(user.get("accountEnabled"), record, "accountEnabled")
    never_expires: bool | None = None
    policies: set[str] = set()
    if "passwordPolicies" in user:  # selected: null means none set
        text = problems.text(user["passwordPolicies"], record, "passwordPolicies")
        if text is not None or user["passwordPolicies"] is None:
            policies = {p.strip() for p in (text or "").split(",") if p.strip()}
            never_expires = "DisablePasswordExpiration" in policies
    else:
        problems.missing(record, "passwordPolicies", "password expiry unknown")
    synced = problems.boolean(user.get("onPremisesSyncEnabled"), record, "onPremisesSyncEnabled")
    if synced:
        policy_id = None  # governed by the on-premises directory's policy
    elif "DisableStrongPassword" in policies:
        policy_id = WEAK_CLOUD_POLICY_ID
    else:
        policy_id = CLOUD_POLICY_ID
    identifiers = {
        key: value for key, field in (
            ("on_prem_sid", "onPremisesSecurityIdentifier"), ("immutable_id", "onPremisesImmutableId"),
            ("employee_id", "employeeId"), ("upn", "userPrincipalName"),
        ) if (value := problems.text(user.get(field), record, field, numbers=field == "employeeId"))
    }
    raw = {k: str(user[k]) for k in ("accountEnabled", "userType", "externalUserState", "passwordPolicies",
                                     "onPremisesSyncEnabled") if user.get(k) is not None}
    if raw_activity:
        raw[attribute or ""] = str(raw_activity)
    user_type = problems.text(user.get("userType"), record, "userType")
    external_state = problems.text(user.get("externalUserState"), record, "externalUserState")
    created = problems.moment(user.get("createdDateTime"), record, "createdDateTime")
    activity_known = sign_in_known and readable
    return Account(
        source=source, id=user_id, username=upn, email=problems.text(user.get("mail"), record, "mail"),
        display_name=problems.text(user.get("displayName"), record, "displayName"),
        kind=AccountKind.GUEST if (user_type or "").lower() == "guest" else AccountKind.HUMAN,
        enabled=enabled, created_at=created,
        activity_known=activity_known,
        activity_unknown_reason=None if activity_known else unknown_reason or "signInActivity absent or unreadable",
        last_activity_at=last if activity_known else None, last_activity_attribute=attribute,
        last_activity_raw=str(raw_activity) if raw_activity else None, activity_lag=SIGN_IN_ACTIVITY_LAG,
        password_last_set_at=problems.moment(user.get("lastPasswordChangeDateTime"), record,
                                             "lastPasswordChangeDateTime"),
        password_never_expires=never_expires,
        mfa_registered=mfa.get(user_id), password_policy_id=policy_id, identifiers=identifiers, raw=raw,
        licences=licences(user, record, sku_names or {}, problems),
        manager=manager_of(user, record, problems),
        invitation_pending_since=(
            problems.moment(user.get("externalUserStateChangeDateTime"), record, "externalUserStateChangeDateTime")
            or created
        ) if external_state == "PendingAcceptance" else None,
    )


def map_directory_audit(source: str, record: Mapping[str, Any], problems: ValueProblems) -> ChangeEvent | None:
    action = AUDIT_ACTIONS.get(str(record.get("activityDisplayName", "")))
    if action is None or str(record.get("result", "success")).lower() != "success":
        return None
    name = f"audit {record.get('id')}"
    when = problems.moment(record.get("activityDateTime"), name, "activityDateTime")
    targets = [t for t in problems.items(record.get("targetResources"), name, "targetResources")
               if isinstance(t, Mapping) and str(t.get("type", "")).lower() == "user"]
    if when is None or not targets:
        return None
    target = targets[0]
    initiator = problems.mapping(record.get("initiatedBy"), name, "initiatedBy") or {}
    user = initiator.get("user") if isinstance(initiator.get("user"), Mapping) else {}
    app = initiator.get("app") if isinstance(initiator.get("app"), Mapping) else {}
    actor = (user or {}).get("userPrincipalName") or (app or {}).get("displayName")
    return ChangeEvent(
        source=source, at=when, account_id=str(target.get("id") or ""),
        username=problems.text(target.get("userPrincipalName"), name, "targetResources.userPrincipalName"),
        action=action, actor=str(actor) if actor else None, detail=str(record.get("activityDisplayName")),
    )
