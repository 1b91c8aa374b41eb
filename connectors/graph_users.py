"""Microsoft Graph objects to inventory: ``/users`` entries and ``directoryAudits`` records.

Shared by the offline ``graph-json`` source and the live Entra connector. Facts: REFERENCE.md 2.1-2.6.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.timeconv import TimeFormatError, from_iso8601

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
            # [inf] Microsoft documents only "allows weaker passwords"; complexity is what it drops.
            source=source, id=WEAK_CLOUD_POLICY_ID, name="Entra ID cloud policy with DisableStrongPassword",
            min_length=8, min_character_classes=0, banned_list=True, max_age=None, lockout_threshold=10,
            applies_to=["users whose passwordPolicies include DisableStrongPassword"],
            raw={"passwordPolicies": "DisableStrongPassword"},
        ),
    ]


def _time(value: Any, problems: list[str], what: str) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return from_iso8601(value)
    except TimeFormatError as exc:
        problems.append(f"{what}: {exc}")
        return None


def map_user(
    source: str, user: Mapping[str, Any], *, sign_in_known: bool, unknown_reason: str | None,
    mfa: Mapping[str, bool], problems: list[str],
) -> Account:
    user_id = str(user.get("id") or "")
    upn = str(user.get("userPrincipalName") or user_id)
    activity = user.get("signInActivity") or {}
    successful = _time(activity.get("lastSuccessfulSignInDateTime"), problems, upn)
    if successful is not None:
        last, attribute = successful, "signInActivity.lastSuccessfulSignInDateTime"
    else:
        # Before Dec 2023 only attempt times exist (successful or not): the latest of both is the best left.
        interactive = _time(activity.get("lastSignInDateTime"), problems, upn)
        background = _time(activity.get("lastNonInteractiveSignInDateTime"), problems, upn)
        last, attribute = None, None
        if interactive or background:
            if background and (interactive is None or background > interactive):
                last, attribute = background, "signInActivity.lastNonInteractiveSignInDateTime"
            else:
                last, attribute = interactive, "signInActivity.lastSignInDateTime"
    raw_activity = activity.get(attribute.split(".", 1)[1]) if attribute else None
    policies = {p.strip() for p in str(user.get("passwordPolicies") or "").split(",") if p.strip()}
    synced = bool(user.get("onPremisesSyncEnabled"))
    if synced:
        policy_id = None  # governed by the on-premises directory's policy
    elif "DisableStrongPassword" in policies:
        policy_id = WEAK_CLOUD_POLICY_ID
    else:
        policy_id = CLOUD_POLICY_ID
    identifiers = {
        key: str(user[field]) for key, field in (
            ("on_prem_sid", "onPremisesSecurityIdentifier"), ("immutable_id", "onPremisesImmutableId"),
            ("employee_id", "employeeId"), ("upn", "userPrincipalName"),
        ) if user.get(field)
    }
    raw = {k: str(user[k]) for k in ("accountEnabled", "userType", "externalUserState", "passwordPolicies",
                                     "onPremisesSyncEnabled") if user.get(k) is not None}
    if raw_activity:
        raw[attribute or ""] = str(raw_activity)
    return Account(
        source=source, id=user_id, username=upn, email=user.get("mail") or None,
        display_name=user.get("displayName") or None,
        kind=AccountKind.GUEST if str(user.get("userType", "")).lower() == "guest" else AccountKind.HUMAN,
        enabled=bool(user.get("accountEnabled", False)),
        created_at=_time(user.get("createdDateTime"), problems, upn),
        activity_known=sign_in_known, activity_unknown_reason=unknown_reason,
        last_activity_at=last if sign_in_known else None, last_activity_attribute=attribute,
        last_activity_raw=str(raw_activity) if raw_activity else None, activity_lag=SIGN_IN_ACTIVITY_LAG,
        password_last_set_at=_time(user.get("lastPasswordChangeDateTime"), problems, upn),
        password_never_expires="DisablePasswordExpiration" in policies,
        mfa_registered=mfa.get(user_id), password_policy_id=policy_id, identifiers=identifiers, raw=raw,
        invitation_pending_since=(
            _time(user.get("externalUserStateChangeDateTime"), problems, upn) or _time(user.get("createdDateTime"),
                                                                                    problems, upn)
        ) if user.get("externalUserState") == "PendingAcceptance" else None,
    )


def map_directory_audit(source: str, record: Mapping[str, Any], problems: list[str]) -> ChangeEvent | None:
    action = AUDIT_ACTIONS.get(str(record.get("activityDisplayName", "")))
    if action is None or str(record.get("result", "success")).lower() != "success":
        return None
    when = _time(record.get("activityDateTime"), problems, f"audit {record.get('id')}")
    targets = [t for t in record.get("targetResources") or [] if str(t.get("type", "")).lower() == "user"]
    if when is None or not targets:
        return None
    target = targets[0]
    initiator = record.get("initiatedBy") or {}
    actor = (initiator.get("user") or {}).get("userPrincipalName") or (initiator.get("app") or {}).get("displayName")
    return ChangeEvent(
        source=source, at=when, account_id=str(target.get("id") or ""),
        username=target.get("userPrincipalName"), action=action, actor=actor,
        detail=str(record.get("activityDisplayName")),
    )
