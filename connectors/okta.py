"""Source type ``okta``: an Okta org's users, password policies and System Log lifecycle events.

get: ``/api/v1/users`` twice (the default listing leaves out DEPROVISIONED users, which only a status filter
returns), ``/api/v1/policies?type=PASSWORD`` with the members of the groups each policy names, and a
bounded (``since`` + ``until``) System Log query for user lifecycle events; all paged by ``Link`` headers.
transform: Okta statuses and timestamps into the inventory. Rate limits: on 429 the client waits until
``X-Rate-Limit-Reset``, an epoch time read against the server's Date header.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from auditor.model import Account, AccountKind, ChangeAction, ChangeEvent, PasswordPolicy
from auditor.secrets import Redactor
from auditor.timeconv import to_iso
from connectors.base import CollectContext, SourceResult, SourceType
from connectors.http_json import EpochResetThrottling, HttpError, JsonHttpClient
from connectors.preflight import AccessCheck, Probe
from connectors.saas import (
    CANNOT_AUDIT,
    OptionalReads,
    TokenSourceConfig,
    client,
    link_pages,
    probe_checks,
    read_error,
    secret,
    throttle_warnings,
)
from connectors.values import ValueProblems

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
    user_id = problems.text(user.get("id"), "user", "id") or ""
    profile = problems.mapping(user.get("profile"), user_id, "profile") or {}
    login = problems.text(profile.get("login"), user_id, "profile.login")
    record = login or user_id
    status = problems.text(user.get("status"), record, "status") or ""
    if status in SIGN_IN_STATUSES or status in OFF_STATUSES or status == "STAGED":
        enabled: bool | None = status in SIGN_IN_STATUSES
    else:  # absent, null, or a status the Users API does not document: neither enabled nor disabled
        enabled = None
        if status:
            problems.add(record, "status", f"undocumented status {status[:40]!r}")
        else:
            problems.missing(record, "status", "enabled state unknown")
    name = " ".join(str(profile[k]) for k in ("firstName", "lastName") if isinstance(profile.get(k), str))
    changed = problems.moment(user.get("statusChanged"), record, "statusChanged")
    # lastLogin is null when the user never signed in; absent (a projection) or unreadable is unknown.
    activity = problems.activity(user, "lastLogin", record, null_is_never=True)
    employee = problems.text(profile.get("employeeNumber"), record, "profile.employeeNumber", numbers=True)
    second = problems.text(profile.get("secondEmail"), record, "profile.secondEmail")
    return Account(
        source=source, id=user_id, username=login or user_id, enabled=enabled, kind=AccountKind.HUMAN,
        email=problems.text(profile.get("email"), record, "profile.email"),
        display_name=problems.text(profile.get("displayName"), record, "profile.displayName") or name or None,
        created_at=problems.moment(user.get("created"), record, "created"), **activity,
        password_last_set_at=problems.moment(user.get("passwordChanged"), record, "passwordChanged"),
        disabled_at=changed if status in OFF_STATUSES else None,
        invitation_pending_since=changed if status == "PROVISIONED" else None,
        identifiers={"employee_id": employee} if employee else {},
        email_aliases=[second] if second else [],
        # managerId is free text (often an HR or directory id, or a login); the reviewer is resolved later
        manager=f"ref:{manager}" if (manager := problems.text(profile.get("managerId"), record, "profile.managerId",
                                                               numbers=True)) else None,
        raw={k: str(v) for k, v in (("status", status), ("statusChanged", user.get("statusChanged")),
                                    ("transitioningToStatus", user.get("transitioningToStatus")),
                                    ("userType", profile.get("userType"))) if v},
    )


def map_policy(source: str, policy: Mapping[str, Any], problems: ValueProblems) -> PasswordPolicy:
    """A PASSWORD policy (Okta Policy API). Settings it does not give are unknown, not Okta's defaults."""
    policy_id = problems.text(policy.get("id"), "policy", "id") or ""
    name = problems.text(policy.get("name"), policy_id, "name") or policy_id
    record = f"policy {name}"

    def section(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        return problems.mapping(parent.get(key), record, path) or {}

    password = section(section(policy, "settings", "settings"), "password", "settings.password")
    complexity = section(password, "complexity", "settings.password.complexity")
    age = section(password, "age", "settings.password.age")
    lockout = section(password, "lockout", "settings.password.lockout")
    unknown: list[str] = []

    def number(parent: Mapping[str, Any], key: str, path: str, setting: str) -> int | None:
        value = problems.integer(parent.get(key), record, f"settings.password.{path}")
        if value is None:
            unknown.append(setting)
        return value

    minimums = {k: number(complexity, k, f"complexity.{k}", "character_classes")
                for k in ("minLowerCase", "minUpperCase", "minNumber", "minSymbol")}
    min_length = number(complexity, "minLength", "complexity.minLength", "min_length")
    max_age = number(age, "maxAgeDays", "age.maxAgeDays", "max_age")
    min_age = number(age, "minAgeMinutes", "age.minAgeMinutes", "min_age")
    history = number(age, "historyCount", "age.historyCount", "history_length")
    attempts = number(lockout, "maxAttempts", "lockout.maxAttempts", "lockout_threshold")
    dictionary = section(section(complexity, "dictionary", "complexity.dictionary"), "common",
                         "complexity.dictionary.common")
    people = section(section(policy, "conditions", "conditions"), "people", "conditions.people")
    groups = section(people, "groups", "conditions.people.groups")
    priority = problems.integer(policy.get("priority"), record, "priority")
    result = PasswordPolicy(
        source=source, id=policy_id, name=name, min_length=min_length,
        min_character_classes=sum(1 for v in minimums.values() if v),
        min_lowercase=minimums["minLowerCase"] or 0, min_uppercase=minimums["minUpperCase"] or 0,
        min_digits=minimums["minNumber"] or 0, min_symbols=minimums["minSymbol"] or 0,
        excludes_username=problems.boolean(complexity.get("excludeUsername"), record,
                                           "settings.password.complexity.excludeUsername") is True,
        history_length=history,
        max_age=timedelta(days=max_age) if max_age else None,
        min_age=timedelta(minutes=min_age) if min_age else None,
        lockout_threshold=attempts,
        banned_list=problems.boolean(dictionary.get("exclude"), record,
                                     "settings.password.complexity.dictionary.common.exclude") is True,
        applies_to=[str(g) for g in problems.items(groups.get("include"), record, "conditions.people.groups.include")],
        precedence=priority, unknown_settings=sorted(set(unknown)),
        raw={k: str(policy[k]) for k in ("status", "system", "priority") if policy.get(k) is not None},
    )
    rated = sorted({"min_length", "character_classes"} & set(unknown))
    if rated:
        result.settings_known = False
        result.unknown_reason = f"{' and '.join(rated).replace('_', ' ')} not in the policy's settings"
    return result


def _policies(config: OktaConfig, api: JsonHttpClient, accounts: list[Account], warnings: list[str],
              redact: Redactor, problems: ValueProblems, optional: OptionalReads) -> list[PasswordPolicy]:
    """Password policies, and each user's governing one: the active policy of lowest priority number among
    those naming one of the user's groups (the system default policy names Everyone)."""
    try:
        raw = [p for page in link_pages(api, "/api/v1/policies", {"type": "PASSWORD"}, problems) for p in page]
    except HttpError as exc:
        if optional.refused(exc, "password policies"):
            warnings.append(f"password policies not read (governing policy unknown): {redact(str(exc))}")
        return []
    policies = [map_policy(config.name, p, problems) for p in raw if p.get("status", "ACTIVE") == "ACTIVE"]
    governing: dict[str, str] = {}
    for policy in sorted(policies, key=lambda p: p.precedence if p.precedence is not None else 10**6):
        for group in policy.applies_to:
            try:
                for page in link_pages(api, f"/api/v1/groups/{group}/users", {"limit": "1000"}, problems):
                    for member in page:
                        governing.setdefault(str(member.get("id")), policy.id)
            except HttpError as exc:
                if optional.refused(exc, f"members of group {group} (policy {policy.name})"):
                    warnings.append(f"members of group {group} (policy {policy.name}) not read: {redact(str(exc))}")
    for account in accounts:
        account.password_policy_id = governing.get(account.id)
    return policies


def _events(config: OktaConfig, api: JsonHttpClient, as_of: datetime, warnings: list[str],
            redact: Redactor, problems: ValueProblems, optional: OptionalReads) -> list[ChangeEvent]:
    """A bounded System Log query (since + until: finite and ordered; polling would never end)."""
    since = as_of - timedelta(days=config.log_days)
    params = {"since": to_iso(since) or "", "until": to_iso(as_of) or "", "limit": "1000", "sortOrder": "ASCENDING",
              "filter": " or ".join(f'eventType eq "{t}"' for t in EVENT_ACTIONS)}
    events: list[ChangeEvent] = []
    try:
        for page in link_pages(api, "/api/v1/logs", params, problems):
            for entry in page:
                events.extend(_event(config.name, entry, problems))
    except HttpError as exc:
        if optional.refused(exc, "System Log"):
            warnings.append(f"System Log not read: change events come from snapshots only: {redact(str(exc))}")
    return events


def _event(source: str, entry: Mapping[str, Any], problems: ValueProblems) -> Iterator[ChangeEvent]:
    action = EVENT_ACTIONS.get(str(entry.get("eventType")))
    record = f"log event {entry.get('uuid')}"
    when = problems.moment(entry.get("published"), record, "published")
    outcome = problems.mapping(entry.get("outcome"), record, "outcome") or {}
    if action is None or when is None or outcome.get("result", "SUCCESS") != "SUCCESS":
        return
    actor = (problems.mapping(entry.get("actor"), record, "actor") or {}).get("alternateId")
    for target in problems.items(entry.get("target"), record, "target"):
        if isinstance(target, dict) and target.get("type") == "User":
            yield ChangeEvent(source=source, at=when, account_id=str(target.get("id")), action=action,
                              username=target.get("alternateId"), actor=actor, detail=str(entry.get("eventType")))


def collect(config: OktaConfig, context: CollectContext) -> SourceResult:
    as_of = context.as_of
    redact = Redactor()
    token = secret("token", config.token_env, config.token_file, redact)
    api = client(config, f"SSWS {token}", EpochResetThrottling("X-Rate-Limit-Reset"))
    problems = ValueProblems()
    users: dict[str, Account] = {}
    # The default listing omits DEPROVISIONED users: they are what offboarding evidence is made of.
    stopped = None
    for what, params in (("users", {"limit": str(config.page_size)}),
                         ("deprovisioned users", {"limit": str(config.page_size),
                                                  "filter": 'status eq "DEPROVISIONED"'})):
        try:
            for page in link_pages(api, "/api/v1/users", params, problems):
                for account in problems.map_each(page, lambda user: map_user(config.name, user, problems)):
                    users[account.id] = account
        except HttpError as exc:
            if not users:
                raise read_error(config, f"reading {what}", exc, redact) from None
            # Some users are read: keep them, and say the source is incomplete.
            stopped = f"reading {what} stopped after {len(users)} user(s): {redact(str(exc))}"
            break
    accounts = list(users.values())
    warnings: list[str] = []
    optional = OptionalReads(redact, warnings)
    policies = _policies(config, api, accounts, warnings, redact, problems, optional) if config.read_policies else []
    events = _events(config, api, as_of, warnings, redact, problems, optional) if config.read_system_log else []
    warnings += throttle_warnings(api, "X-Rate-Limit-Reset") + problems.warnings()
    return SourceResult(accounts=accounts, policies=policies, change_events=events, warnings=warnings,
                        partial_error=problems.partial_error(stopped, optional.partial_error()))


def check_access(config: OktaConfig) -> list[AccessCheck]:
    probes = [Probe("list users (okta.users.read)", "/api/v1/users", {"limit": "1"}, CANNOT_AUDIT)]
    if config.read_policies:
        probes += [
            Probe("read password policies (okta.policies.read)", "/api/v1/policies", {"type": "PASSWORD"},
                  "password policies unknown: every user's policy strength is unknown"),
            Probe("list groups (okta.groups.read)", "/api/v1/groups", {"limit": "1"},
                  "which policy governs each user is unknown"),
        ]
    if config.read_system_log:
        now = datetime.now(UTC)
        window = {"since": to_iso(now - timedelta(hours=1)) or "", "until": to_iso(now) or "", "limit": "1"}
        probes.append(Probe("read the System Log (okta.logs.read)", "/api/v1/logs", window,
                            "Okta token lacks okta.logs.read: lifecycle events unknown"))
    return probe_checks(config, lambda redact: f"SSWS {secret('token', config.token_env, config.token_file, redact)}",
                        probes)


PERMISSIONS = (
    "An API token (SSWS) created by a Read-Only Administrator: it has its creator's rights, expires after 30 days "
    "unused, and dies with its creator's account; or an OAuth service app granted okta.users.read, "
    "okta.policies.read, okta.groups.read and okta.logs.read with an admin role assigned to the app.",
)
SOURCE_TYPE = SourceType("okta", "An Okta org: users (DEPROVISIONED too), password policies, System Log",
                         OktaConfig, collect, check_access, PERMISSIONS)
