"""Source type ``okta``: an Okta org's users, password policies and System Log lifecycle events.

get: ``/api/v1/users`` twice (the default listing leaves out DEPROVISIONED users, which only a status filter
returns), ``/api/v1/policies?type=PASSWORD`` with the members of the groups each policy names, and a
bounded (``since`` + ``until``) System Log query for user lifecycle events; all paged by ``Link`` headers.
transform: Okta statuses and timestamps into the inventory. Rate limits: on 429 the client waits until
``X-Rate-Limit-Reset``, an epoch time read against the server's Date header.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.secrets import Redactor
from auditor.timeconv import to_iso
from connectors.base import NO_STATE, SourceResult, SourceType
from connectors.http_json import EpochResetThrottling, HttpError, JsonHttpClient
from connectors.saas import (
    TokenSourceConfig,
    ValueProblems,
    client,
    link_pages,
    read_error,
    secret,
    throttle_warnings,
)

# Statuses in which the person can sign in (or finish activating and then sign in).
SIGN_IN_STATUSES = {"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY", "PROVISIONED"}
OFF_STATUSES = {"SUSPENDED", "DEPROVISIONED"}
LOG_RETENTION_DAYS = 90
EVENT_ACTIONS = {
    "user.lifecycle.create": ChangeAction.CREATED,
    "user.lifecycle.activate": ChangeAction.ENABLED,
    "user.lifecycle.reactivate": ChangeAction.ENABLED,
    "user.lifecycle.unsuspend": ChangeAction.ENABLED,
    "user.lifecycle.deactivate": ChangeAction.DISABLED,
    "user.lifecycle.suspend": ChangeAction.DISABLED,
    "user.lifecycle.delete.initiated": ChangeAction.DELETED,
    "user.account.update_profile": ChangeAction.MODIFIED,
    "user.account.reset_password": ChangeAction.PASSWORD_RESET,
    "user.account.update_password": ChangeAction.PASSWORD_RESET,
    "group.user_membership.add": ChangeAction.GROUP_CHANGED,
    "group.user_membership.remove": ChangeAction.GROUP_CHANGED,
}


class OktaConfig(TokenSourceConfig):
    type: Literal["okta"]
    base_url: str  # the org URL, e.g. https://acme.okta.com; the API token is sent as "SSWS <token>"
    page_size: int = Field(default=200, ge=1, le=200)
    read_policies: bool = True  # okta.policies.read
    read_system_log: bool = True  # okta.logs.read
    log_days: int = Field(default=30, ge=1, le=LOG_RETENTION_DAYS)


def map_user(source: str, user: Mapping[str, Any], problems: ValueProblems) -> Account:
    profile = user.get("profile") or {}
    status = str(user.get("status") or "")
    user_id = str(user.get("id"))
    name = " ".join(str(profile[k]) for k in ("firstName", "lastName") if profile.get(k))
    changed = problems.moment(user.get("statusChanged"), f"{user_id}: statusChanged")
    email = profile.get("email")
    return Account(
        source=source, id=user_id, username=str(profile.get("login") or user_id),
        enabled=status in SIGN_IN_STATUSES, kind=AccountKind.HUMAN,
        email=str(email) if email else None, display_name=profile.get("displayName") or name or None,
        created_at=problems.moment(user.get("created"), f"{user_id}: created"),
        activity_known=True,  # lastLogin is null when the user never signed in
        last_activity_at=problems.moment(user.get("lastLogin"), f"{user_id}: lastLogin"),
        last_activity_attribute="lastLogin", last_activity_raw=user.get("lastLogin"),
        password_last_set_at=problems.moment(user.get("passwordChanged"), f"{user_id}: passwordChanged"),
        disabled_at=changed if status in OFF_STATUSES else None,
        invitation_pending_since=changed if status == "PROVISIONED" else None,
        identifiers={"employee_id": str(profile["employeeNumber"])} if profile.get("employeeNumber") else {},
        email_aliases=[str(profile["secondEmail"])] if profile.get("secondEmail") else [],
        raw={k: str(v) for k, v in (("status", status), ("statusChanged", user.get("statusChanged")),
                                    ("transitioningToStatus", user.get("transitioningToStatus")),
                                    ("userType", profile.get("userType"))) if v},
    )


def map_policy(source: str, policy: Mapping[str, Any]) -> PasswordPolicy:
    settings = (policy.get("settings") or {}).get("password") or {}
    complexity = settings.get("complexity") or {}
    age = settings.get("age") or {}
    lockout = settings.get("lockout") or {}
    minimums = {k: int(complexity.get(k) or 0) for k in ("minLowerCase", "minUpperCase", "minNumber", "minSymbol")}
    max_age = int(age.get("maxAgeDays") or 0)
    min_age = int(age.get("minAgeMinutes") or 0)
    return PasswordPolicy(
        source=source, id=str(policy.get("id")), name=str(policy.get("name") or policy.get("id")),
        min_length=int(complexity["minLength"]) if complexity.get("minLength") is not None else None,
        min_character_classes=sum(1 for v in minimums.values() if v > 0),
        min_lowercase=minimums["minLowerCase"], min_uppercase=minimums["minUpperCase"],
        min_digits=minimums["minNumber"], min_symbols=minimums["minSymbol"],
        excludes_username=bool(complexity.get("excludeUsername")),
        history_length=int(age["historyCount"]) if age.get("historyCount") is not None else None,
        max_age=timedelta(days=max_age) if max_age else None,
        min_age=timedelta(minutes=min_age) if min_age else None,
        lockout_threshold=int(lockout.get("maxAttempts") or 0),
        banned_list=bool(((complexity.get("dictionary") or {}).get("common") or {}).get("exclude")),
        applies_to=[str(g) for g in ((policy.get("conditions") or {}).get("people") or {}).get("groups", {})
                    .get("include", [])],
        precedence=int(policy["priority"]) if policy.get("priority") is not None else None,
        raw={k: str(policy[k]) for k in ("status", "system", "priority") if policy.get(k) is not None},
    )


def _policies(config: OktaConfig, api: JsonHttpClient, accounts: list[Account], warnings: list[str],
              redact: Redactor) -> list[PasswordPolicy]:
    """Password policies, and each user's governing one: the active policy of lowest priority number among
    those naming one of the user's groups (the system default policy names Everyone)."""
    try:
        raw = next(link_pages(api, "/api/v1/policies", {"type": "PASSWORD"}), [])
    except HttpError as exc:
        warnings.append(f"password policies not read (governing policy unknown): {redact(str(exc))}")
        return []
    policies = [map_policy(config.name, p) for p in raw if p.get("status", "ACTIVE") == "ACTIVE"]
    governing: dict[str, str] = {}
    for policy in sorted(policies, key=lambda p: p.precedence if p.precedence is not None else 10**6):
        for group in policy.applies_to:
            try:
                for page in link_pages(api, f"/api/v1/groups/{group}/users", {"limit": "1000"}):
                    for member in page:
                        governing.setdefault(str(member.get("id")), policy.id)
            except HttpError as exc:
                warnings.append(f"members of group {group} (policy {policy.name}) not read: {redact(str(exc))}")
    for account in accounts:
        account.password_policy_id = governing.get(account.id)
    return policies


def _events(config: OktaConfig, api: JsonHttpClient, as_of: datetime, warnings: list[str],
            redact: Redactor) -> list[ChangeEvent]:
    """A bounded System Log query (since + until: finite and ordered; polling would never end)."""
    since = as_of - timedelta(days=config.log_days)
    params = {"since": to_iso(since) or "", "until": to_iso(as_of) or "", "limit": "1000", "sortOrder": "ASCENDING",
              "filter": " or ".join(f'eventType eq "{t}"' for t in EVENT_ACTIONS)}
    events: list[ChangeEvent] = []
    try:
        for page in link_pages(api, "/api/v1/logs", params):
            for entry in page:
                events.extend(_event(config.name, entry))
    except HttpError as exc:
        warnings.append(f"System Log not read: change events come from snapshots only: {redact(str(exc))}")
    return events


def _event(source: str, entry: Mapping[str, Any]) -> Iterator[ChangeEvent]:
    action = EVENT_ACTIONS.get(str(entry.get("eventType")))
    problems = ValueProblems()
    when = problems.moment(entry.get("published"), "published")
    if action is None or when is None or (entry.get("outcome") or {}).get("result", "SUCCESS") != "SUCCESS":
        return
    actor = (entry.get("actor") or {}).get("alternateId")
    for target in entry.get("target") or []:
        if isinstance(target, dict) and target.get("type") == "User":
            yield ChangeEvent(source=source, at=when, account_id=str(target.get("id")), action=action,
                              username=target.get("alternateId"), actor=actor, detail=str(entry.get("eventType")))


def collect(config: OktaConfig, as_of: datetime, previous_state: Mapping[str, str] = NO_STATE) -> SourceResult:
    redact = Redactor()
    token = secret("token", config.token_env, config.token_file, redact)
    api = client(config, f"SSWS {token}", EpochResetThrottling("X-Rate-Limit-Reset"))
    problems = ValueProblems()
    users: dict[str, Account] = {}
    # The default listing omits DEPROVISIONED users: they are what offboarding evidence is made of.
    partial = None
    for what, params in (("users", {"limit": str(config.page_size)}),
                         ("deprovisioned users", {"limit": str(config.page_size),
                                                  "filter": 'status eq "DEPROVISIONED"'})):
        try:
            for page in link_pages(api, "/api/v1/users", params):
                for user in page:
                    account = map_user(config.name, user, problems)
                    users[account.id] = account
        except HttpError as exc:
            if not users:
                raise read_error(config, f"reading {what}", exc, redact) from None
            # Some users are read: keep them, and say the source is incomplete.
            partial = f"reading {what} stopped after {len(users)} user(s): {redact(str(exc))}"
            break
    accounts = list(users.values())
    warnings: list[str] = []
    policies = _policies(config, api, accounts, warnings, redact) if config.read_policies else []
    events = _events(config, api, as_of, warnings, redact) if config.read_system_log else []
    warnings += throttle_warnings(api, "X-Rate-Limit-Reset") + problems.warnings()
    return SourceResult(accounts=accounts, policies=policies, change_events=events, warnings=warnings,
                        partial_error=partial)


SOURCE_TYPE = SourceType("okta", "An Okta org: users (DEPROVISIONED too), password policies, System Log",
                         OktaConfig, collect)
